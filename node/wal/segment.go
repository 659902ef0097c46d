package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".wal"
	tmpSuffix     = ".tmp"
	// segmentMagic opens every segment header, so that a file of another
	// format is refused rather than misread.
	segmentMagic   = "plumbwal"
	segmentVersion = 1
	// segmentHeaderBytes is the size of a segment header record's data.
	segmentHeaderBytes = 56
)

// segmentName is %016x-%016x.wal: the segment's sequence number, and the
// index its first entry was expected to have (the WAL's last index + 1 when
// the segment was started), as etcd names its segments.
func segmentName(seq, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, index, segmentSuffix)
}

func parseSegmentName(name string) (seq, index uint64, ok bool) {
	base, found := strings.CutSuffix(name, segmentSuffix)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	return seq, index, err1 == nil && err2 == nil
}

// segment is one segment file of a WAL.
type segment struct {
	seq, index uint64
	name       string // base name
}

// listSegments returns the segments in dir in sequence order, checking that
// the sequence has no hole (ReleaseTo only ever removes the oldest). Name
// indexes may go down: after raft truncates its log, the next segment
// starts below the previous one's index.
func listSegments(fsys FS, dir string) ([]segment, error) {
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var segs []segment
	for _, n := range names {
		if seq, index, ok := parseSegmentName(n); ok {
			segs = append(segs, segment{seq: seq, index: index, name: n})
		}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, dir)
	}
	// The names sort by sequence: it is the zero-padded first field.
	for i := 1; i < len(segs); i++ {
		prev, s := segs[i-1], segs[i]
		if s.seq != prev.seq+1 {
			return nil, &CorruptError{File: path.Join(dir, s.name), Reason: fmt.Sprintf(
				"segment sequence jumps from %d to %d: a segment file is missing", prev.seq, s.seq)}
		}
	}
	return segs, nil
}

// segmentHeader is the data of a segment's first record. It repeats the
// name's fields (a renamed or misplaced file is caught), records how long
// the prologue is, and carries the newest snapshot mark forward, so that
// releasing old segments never loses it.
type segmentHeader struct {
	seq, index    uint64
	prologueBytes int64
	mark          SnapshotMark
}

func (h segmentHeader) encode() []byte {
	b := make([]byte, segmentHeaderBytes)
	copy(b, segmentMagic)
	binary.LittleEndian.PutUint32(b[8:], segmentVersion)
	binary.LittleEndian.PutUint64(b[16:], h.seq)
	binary.LittleEndian.PutUint64(b[24:], h.index)
	binary.LittleEndian.PutUint64(b[32:], uint64(h.prologueBytes))
	binary.LittleEndian.PutUint64(b[40:], h.mark.Index)
	binary.LittleEndian.PutUint64(b[48:], h.mark.Term)
	return b
}

func decodeSegmentHeader(rec record) (segmentHeader, error) {
	var h segmentHeader
	b := rec.data
	switch {
	case rec.typ != recordSegment:
		return h, fmt.Errorf("first record has type %d, not a segment header", rec.typ)
	case len(b) != segmentHeaderBytes || string(b[:8]) != segmentMagic:
		return h, errors.New("not a plumb WAL segment header")
	case binary.LittleEndian.Uint32(b[8:]) != segmentVersion:
		return h, fmt.Errorf("segment format version %d, this plumb reads %d", binary.LittleEndian.Uint32(b[8:]), segmentVersion)
	case binary.LittleEndian.Uint32(b[12:]) != 0:
		return h, errors.New("reserved segment header bytes are not zero")
	}
	h.seq = binary.LittleEndian.Uint64(b[16:])
	h.index = binary.LittleEndian.Uint64(b[24:])
	h.prologueBytes = int64(binary.LittleEndian.Uint64(b[32:]))
	h.mark = SnapshotMark{Index: binary.LittleEndian.Uint64(b[40:]), Term: binary.LittleEndian.Uint64(b[48:])}
	if h.prologueBytes < rec.end || h.prologueBytes%recordAlignBytes != 0 {
		return h, fmt.Errorf("segment header claims a prologue of %d bytes", h.prologueBytes)
	}
	return h, nil
}
