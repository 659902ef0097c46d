package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
)

// A snapshot travels as one HTTP request, POST /raft/snapshot: headers
// naming the route and the data's size (headerSnapshotBytes), then a body
// of frames, the head (the message without its data, DataBytes set) and
// the data in chunks of snapshotChunkBytes. The sender asks for a
// go-ahead (Expect: 100-continue), so that a member that refuses the
// snapshot on its headers (route, size, slots) answers before any data
// is sent. The receiver answers 204 once the loop's inbox has the
// snapshot, or an error status and the reason.

// sendSnapshot sends m to p and returns once p's loop has it, within
// snapshotSendTimeout, with the bytes of the request's body.
func (t *transport) sendSnapshot(ctx context.Context, p *peer, m *raftpb.Message) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, snapshotSendTimeout)
	defer cancel()
	data := m.GetSnapshot().GetData()
	head := proto.CloneOf(m)
	head.Snapshot.Data = nil
	headBody, err := proto.Marshal(head)
	if err != nil {
		return 0, fmt.Errorf("encode snapshot message: %w", err)
	}
	body, bodyBytes := t.snapshotBody(p.id, headBody, data)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.ep.httpURL(peerSnapshotPath), body)
	if err != nil {
		return 0, err
	}
	req.ContentLength = bodyBytes
	req.Header.Set("Expect", "100-continue")
	t.setRoute(req.Header, p.id)
	req.Header.Set(headerSnapshotBytes, strconv.Itoa(len(data)))
	resp, err := t.snapshots[p.ep.network].Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return 0, peerRefusal(resp)
	}
	return bodyBytes, nil
}

// snapshotBody frames a snapshot for peer to: the head frame, then data
// in chunks, read from data in place. It returns the body and its length.
func (t *transport) snapshotBody(to uint64, headBody, data []byte) (io.Reader, int64) {
	route := frame{ClusterID: t.clusterID, From: t.self, To: to}
	head := route
	head.DataBytes, head.Body = uint64(len(data)), headBody
	parts := []io.Reader{bytes.NewReader(appendFrame(nil, &head))}
	bodyBytes := parts[0].(*bytes.Reader).Size()
	for off := 0; off < len(data); off += snapshotChunkBytes {
		chunk := data[off:min(off+snapshotChunkBytes, len(data))]
		h := appendFrameHeader(nil, &route, len(chunk))
		parts = append(parts, bytes.NewReader(h), bytes.NewReader(chunk))
		bodyBytes += int64(len(h) + len(chunk))
	}
	return io.MultiReader(parts...), bodyBytes
}

// serveSnapshot receives a snapshot: it checks the route, the announced
// size (against snapshotBytesMax) and that a slot is free before it reads
// any of the data, then reads it all, checking each frame, and answers 204
// once the loop's inbox has it.
func (t *transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if !t.enter(nil, 0) {
		peerError(w, http.StatusServiceUnavailable, errStopping)
		return
	}
	defer t.leave(nil)
	cluster, from, err := t.checkRoute(r.Header)
	if err != nil {
		t.metrics.snapRecvFailures.WithLabelValues(unknownSnapshotSender).Inc()
		t.refuseRequest(w, cluster, from, err)
		return
	}
	start, sender, received := time.Now(), node.FormatID(from), false
	body := &countingReader{r: r.Body}
	defer func() {
		t.metrics.peerRecvBytes.WithLabelValues(sender).Add(float64(body.n))
		if !received {
			t.metrics.snapRecvFailures.WithLabelValues(sender).Inc()
			return
		}
		t.metrics.snapRecvSuccess.WithLabelValues(sender).Inc()
		t.metrics.snapRecvSeconds.WithLabelValues(sender).Observe(time.Since(start).Seconds())
	}()
	dataBytes, err := strconv.ParseUint(r.Header.Get(headerSnapshotBytes), 10, 64)
	if err != nil {
		peerError(w, http.StatusBadRequest, fmt.Errorf("the snapshot's %s header: %w", headerSnapshotBytes, err))
		return
	}
	if dataBytes > t.snapshotBytesMax {
		peerError(w, http.StatusRequestEntityTooLarge, fmt.Errorf(
			"snapshot of %d bytes is over this member's limit of %d (from its backend quota, --quota-backend-bytes)", dataBytes, t.snapshotBytesMax))
		return
	}
	select {
	case t.snapshotSlots <- struct{}{}:
		t.metrics.snapshotsReceiving.Inc()
		defer func() { <-t.snapshotSlots; t.metrics.snapshotsReceiving.Dec() }()
	default:
		peerError(w, http.StatusTooManyRequests, fmt.Errorf(
			"this member is already receiving %d snapshots, the most it takes at once; send it again later", snapshotStreamsMax))
		return
	}
	m, head, err := t.receiveSnapshot(bufio.NewReaderSize(body, peerReadBufferBytes), from, dataBytes)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, node.ErrClusterMismatch) || errors.Is(err, node.ErrWrongMember) {
			code = http.StatusPreconditionFailed // refuse counted it
		}
		peerError(w, code, err)
		return
	}
	select {
	case t.inbox <- node.Envelope{ClusterID: head.ClusterID, Message: m}:
	case <-t.stopped:
		peerError(w, http.StatusServiceUnavailable, errStopping)
		return
	case <-r.Context().Done():
		return // the sender went away
	}
	received = true
	w.WriteHeader(http.StatusNoContent)
}

// unknownSnapshotSender labels the snapshot requests refused before their
// sender is known (etcd's label for them).
const unknownSnapshotSender = "UNKNOWN_SNAPSHOT_SENDER"

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// receiveSnapshot reads a snapshot's frames from r: the head, which must
// announce dataBytes, and the chunks, until it has them all.
func (t *transport) receiveSnapshot(r *bufio.Reader, from, dataBytes uint64) (*raftpb.Message, frame, error) {
	fr := frameReader{r: r}
	var head frame
	if err := fr.next(&head); err != nil {
		return nil, head, fmt.Errorf("snapshot from %s: reading its head: %w", node.FormatID(from), err)
	}
	m, err := t.check(&head, from)
	if err != nil {
		return nil, head, t.refuse(&head, err)
	}
	if m.GetType() != raftpb.MessageType_MsgSnap || m.GetSnapshot() == nil {
		return nil, head, errors.New("the snapshot request carries a message that is not a snapshot")
	}
	if head.DataBytes != dataBytes {
		return nil, head, fmt.Errorf("the snapshot's head announces %d bytes, its request %d", head.DataBytes, dataBytes)
	}
	head.Body = nil // it aliases the reader's buffer
	data, err := receiveSnapshotData(&fr, &head)
	if err != nil {
		return nil, head, err
	}
	m.Snapshot.Data = data
	return m, head, nil
}

// receiveSnapshotData reads a snapshot's chunks until it has the bytes its
// head announced; every chunk must name the head's route. The buffer
// grows with the data that arrived, never ahead of it: an announced size
// is only a claim.
func receiveSnapshotData(fr *frameReader, head *frame) ([]byte, error) {
	var data []byte
	var chunk frame
	for uint64(len(data)) < head.DataBytes {
		if err := fr.next(&chunk); err != nil {
			return nil, fmt.Errorf("snapshot from %s cut off at %d of %d bytes: %w", node.FormatID(head.From), len(data), head.DataBytes, err)
		}
		if chunk.ClusterID != head.ClusterID || chunk.From != head.From || chunk.To != head.To || chunk.DataBytes != 0 {
			return nil, fmt.Errorf("a snapshot chunk names cluster %s, from %s, to %s, its head cluster %s, from %s, to %s",
				node.FormatID(chunk.ClusterID), node.FormatID(chunk.From), node.FormatID(chunk.To),
				node.FormatID(head.ClusterID), node.FormatID(head.From), node.FormatID(head.To))
		}
		if uint64(len(data)+len(chunk.Body)) > head.DataBytes {
			return nil, errors.New("snapshot data longer than announced")
		}
		data = appendChunk(data, chunk.Body, head.DataBytes)
	}
	return data, nil
}

// appendChunk appends chunk to data, doubling data's capacity when it is
// short, but never past announcedBytes. The caller has checked that
// len(data)+len(chunk) <= announcedBytes.
func appendChunk(data, chunk []byte, announcedBytes uint64) []byte {
	need := len(data) + len(chunk)
	if need > cap(data) {
		grown := make([]byte, len(data), min(uint64(max(2*cap(data), need)), announcedBytes))
		copy(grown, data)
		data = grown
	}
	return append(data, chunk...)
}
