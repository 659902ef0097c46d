package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// frame is what travels on the peer port. Every frame names the cluster,
// the sender and the receiver, so that a member of another cluster that
// took over an address (or a removed member) is refused before raft hears
// it. Body is a marshalled raftpb.Message; on a snapshot request the first
// frame carries the message without its data and DataBytes, the frames
// after it carry the data in chunks.
//
// On the wire a frame is its length (a uvarint: the bytes that follow it,
// at most maxPeerFrameBytes), then the three IDs and DataBytes as uvarints,
// then the body. The length lets a reader take frames one after another
// straight off a connection.
type frame struct {
	ClusterID, From, To uint64
	DataBytes           uint64
	Body                []byte
}

// Bounds of the frame reader.
const (
	// frameReadStepBytes is the most a frame reader allocates ahead of
	// the bytes that arrived: a length is only a claim, so the buffer
	// grows (doubling) with the data, not with the claim.
	frameReadStepBytes = 64 << 10
	// frameBufKeepBytes is the largest buffer a frame reader keeps for
	// the next frame: a snapshot chunk fits, a rare huge append does not
	// stay allocated for the life of the stream.
	frameBufKeepBytes = 2 * snapshotChunkBytes
)

// appendFrameHeader appends the length and header of f, for a body of
// bodyBytes that the caller appends after it (f.Body is not read).
func appendFrameHeader(dst []byte, f *frame, bodyBytes int) []byte {
	var scratch [4 * binary.MaxVarintLen64]byte
	h := scratch[:0]
	for _, x := range [...]uint64{f.ClusterID, f.From, f.To, f.DataBytes} {
		h = binary.AppendUvarint(h, x)
	}
	dst = binary.AppendUvarint(dst, uint64(len(h)+bodyBytes))
	return append(dst, h...)
}

// appendFrame appends f, length, header and body.
func appendFrame(dst []byte, f *frame) []byte {
	return append(appendFrameHeader(dst, f, len(f.Body)), f.Body...)
}

// decodeFrame decodes the header of data (a frame without its length)
// into f; f.Body aliases data.
func decodeFrame(data []byte, f *frame) error {
	var fields [4]uint64
	for i := range fields {
		x, n := binary.Uvarint(data)
		if n <= 0 {
			return errors.New("peer frame: truncated header")
		}
		fields[i], data = x, data[n:]
	}
	f.ClusterID, f.From, f.To, f.DataBytes = fields[0], fields[1], fields[2], fields[3]
	f.Body = data
	return nil
}

// frameReader reads frames one after another from r. It reuses its
// buffer: a frame's Body is valid only until the next call to next.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
	// frameBytes is the size on the wire of the frame next read last,
	// its length included.
	frameBytes int
}

// next reads the next frame into f. It returns io.EOF, unwrapped, only
// when r ends cleanly between two frames.
func (fr *frameReader) next(f *frame) error {
	n, err := binary.ReadUvarint(fr.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("peer frame: reading its length: %w", err)
	}
	if n > maxPeerFrameBytes {
		return fmt.Errorf("peer frame of %d bytes is over the limit of %d", n, maxPeerFrameBytes)
	}
	if cap(fr.buf) > frameBufKeepBytes {
		fr.buf = nil
	}
	fr.buf, err = readGrowing(fr.r, fr.buf[:0], int(n))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("peer frame cut off at %d of %d bytes: %w", len(fr.buf), n, err)
	}
	fr.frameBytes = uvarintBytes(n) + len(fr.buf)
	return decodeFrame(fr.buf, f)
}

// uvarintBytes is the size of x encoded as a uvarint.
func uvarintBytes(x uint64) int {
	var scratch [binary.MaxVarintLen64]byte
	return binary.PutUvarint(scratch[:], x)
}

// readGrowing appends n bytes from r to buf, growing buf with the bytes
// that arrived: at most frameReadStepBytes, or as much as buf already
// holds, ahead of them.
func readGrowing(r io.Reader, buf []byte, n int) ([]byte, error) {
	want := len(buf) + n
	for len(buf) < want {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(len(buf), frameReadStepBytes), want-len(buf)))
		}
		got, err := io.ReadFull(r, buf[len(buf):min(cap(buf), want)])
		buf = buf[:len(buf)+got]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
