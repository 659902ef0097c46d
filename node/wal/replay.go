package wal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapshotMarkBytes is the size of a snapshot mark record's data: index and
// term.
const snapshotMarkBytes = 16

func encodeMark(m SnapshotMark) []byte {
	b := make([]byte, snapshotMarkBytes)
	binary.LittleEndian.PutUint64(b[0:], m.Index)
	binary.LittleEndian.PutUint64(b[8:], m.Term)
	return b
}

// replay rebuilds, record by record and in write order, the state the
// records of a WAL describe.
type replay struct {
	snap     SnapshotMark // the caller's snapshot: entries at or below it keep only their term
	metadata []byte
	hs       *raftpb.HardState // nil until a hard state record is seen
	// ents is raft's log as the records so far leave it: contiguous, its last
	// entry at lastIndex. It may be empty with lastIndex > 0: the entries
	// before are in released segments or covered by a snapshot.
	ents      []*raftpb.Entry
	lastIndex uint64
	marks     []SnapshotMark // every mark seen, recorded or carried in a segment header
	// prologueBytes is the prologue size of the latest segment replayed.
	prologueBytes int64
}

// segment replays the records of one segment (file is its path, for
// errors). first says it is the oldest segment present.
func (r *replay) segment(file string, seg segment, scan segmentScan, first bool) error {
	recs := scan.recs
	hdr, err := decodeSegmentHeader(recs[0])
	if err != nil {
		return &CorruptError{File: file, Reason: err.Error()}
	}
	if hdr.seq != seg.seq || hdr.index != seg.index {
		return &CorruptError{File: file, Reason: fmt.Sprintf(
			"segment header says sequence %d, index %d, not what the file name says", hdr.seq, hdr.index)}
	}
	prologue := 1
	for prologue < len(recs) && recs[prologue].off < hdr.prologueBytes {
		prologue++
	}
	if err := r.prologue(file, hdr, recs[:prologue], first); err != nil {
		return err
	}
	r.prologueBytes = hdr.prologueBytes
	for _, rec := range recs[prologue:] {
		if err := r.record(rec); err != nil {
			return &CorruptError{File: file, Offset: rec.off, Reason: err.Error()}
		}
	}
	return nil
}

// prologue checks and replays a segment's prologue: header, metadata, and
// the hard state at the time the segment was started, if there was one.
func (r *replay) prologue(file string, hdr segmentHeader, recs []record, first bool) error {
	corrupt := func(off int64, format string, args ...any) error {
		return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	end := recs[len(recs)-1].end
	switch {
	case len(recs) < 2 || recs[1].typ != recordMetadata:
		return corrupt(recs[0].end, "segment prologue lacks its metadata record")
	case len(recs) > 3 || (len(recs) == 3 && recs[2].typ != recordHardState):
		return corrupt(recs[len(recs)-1].off, "unexpected record of type %d in the segment prologue", recs[len(recs)-1].typ)
	case end != hdr.prologueBytes:
		return corrupt(end, "segment prologue ends at %d, its header says %d", end, hdr.prologueBytes)
	}
	if first {
		r.metadata = slices.Clone(recs[1].data)
		if hdr.index > 0 {
			r.lastIndex = hdr.index - 1
		}
	} else if !bytes.Equal(r.metadata, recs[1].data) {
		return corrupt(recs[1].off, "metadata differs from the first segment's (a segment of another member's WAL?)")
	}
	if hdr.mark != (SnapshotMark{}) {
		r.marks = append(r.marks, hdr.mark)
	}
	if len(recs) == 3 {
		if err := r.record(recs[2]); err != nil {
			return corrupt(recs[2].off, "%v", err)
		}
	}
	return nil
}

// record replays one record after a prologue.
func (r *replay) record(rec record) error {
	switch rec.typ {
	case recordHardState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(rec.data, hs); err != nil {
			return fmt.Errorf("hard state record does not decode: %w", err)
		}
		r.hs = hs
	case recordEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(rec.data, e); err != nil {
			return fmt.Errorf("entry record does not decode: %w", err)
		}
		return r.entry(e)
	case recordSnapshot:
		if len(rec.data) != snapshotMarkBytes {
			return fmt.Errorf("snapshot mark record of %d bytes", len(rec.data))
		}
		r.mark(SnapshotMark{
			Index: binary.LittleEndian.Uint64(rec.data[0:]),
			Term:  binary.LittleEndian.Uint64(rec.data[8:]),
		})
	default:
		return fmt.Errorf("record of type %d outside a segment prologue", rec.typ)
	}
	return nil
}

// entry appends e to the log, first cutting off the suffix it replaces, as
// raft does when a leader overwrites a follower's conflicting tail.
func (r *replay) entry(e *raftpb.Entry) error {
	i := e.GetIndex()
	if i == 0 || i > r.lastIndex+1 {
		return fmt.Errorf("entry %d follows index %d: entries are missing", i, r.lastIndex)
	}
	if i <= r.lastIndex {
		if len(r.ents) > 0 && i >= r.ents[0].GetIndex() {
			r.ents = r.ents[:i-r.ents[0].GetIndex()]
		} else {
			r.ents = r.ents[:0]
		}
	}
	if i <= r.snap.Index {
		e.Data = nil // covered by the caller's snapshot: only its term is needed
	}
	r.ents = append(r.ents, e)
	r.lastIndex = i
	return nil
}

// mark replays a SaveSnapshot record. Like raft restoring a snapshot, it
// resets the log when the log does not already hold the snapshot's last
// entry: raft keeps its log only if it has an entry at the snapshot's index
// with the snapshot's term; otherwise the log after the snapshot is empty,
// and any entries recorded earlier above its index are no longer raft's.
func (r *replay) mark(m SnapshotMark) {
	r.marks = append(r.marks, m)
	if m.Index > r.lastIndex {
		r.ents, r.lastIndex = r.ents[:0], m.Index
		return
	}
	if t, ok := r.term(m.Index); ok && t != m.Term {
		r.ents, r.lastIndex = r.ents[:0], m.Index
	}
}

func (r *replay) term(i uint64) (uint64, bool) {
	if len(r.ents) == 0 || i < r.ents[0].GetIndex() || i > r.lastIndex {
		return 0, false
	}
	return r.ents[i-r.ents[0].GetIndex()].GetTerm(), true
}

// checkSnapshot checks that snap (if not zero) was recorded.
func (r *replay) checkSnapshot(snap SnapshotMark) error {
	if snap == (SnapshotMark{}) {
		return nil
	}
	for _, m := range r.marks {
		if m.Index == snap.Index {
			if m.Term != snap.Term {
				return fmt.Errorf("%w: the WAL recorded index %d at term %d, the snapshot has term %d",
					ErrSnapshotMismatch, m.Index, m.Term, snap.Term)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: no record of a snapshot at index %d, term %d", ErrSnapshotNotFound, snap.Index, snap.Term)
}

// entriesAfter returns the log after snap, which must be complete: every
// entry from snap.Index+1 to the last one.
func (r *replay) entriesAfter(snap SnapshotMark) ([]*raftpb.Entry, error) {
	if r.lastIndex <= snap.Index {
		return nil, nil
	}
	if len(r.ents) == 0 || r.ents[0].GetIndex() > snap.Index+1 {
		first := r.lastIndex + 1
		if len(r.ents) > 0 {
			first = r.ents[0].GetIndex()
		}
		return nil, fmt.Errorf("%w: the WAL's log runs from index %d to %d, the snapshot at %d needs it from %d "+
			"(released too early, or an older snapshot than the WAL was released to)",
			ErrSnapshotNotFound, first, r.lastIndex, snap.Index, snap.Index+1)
	}
	out := r.ents[snap.Index+1-r.ents[0].GetIndex():]
	return slices.Clip(out), nil
}

// snapshotMarks returns the distinct marks at or below the hard state's
// commit index, in index order.
func (r *replay) snapshotMarks() []SnapshotMark {
	var out []SnapshotMark
	commit := r.hs.GetCommit()
	for _, m := range r.marks {
		if m.Index <= commit && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b SnapshotMark) int {
		if a.Index != b.Index {
			return cmpUint64(a.Index, b.Index)
		}
		return cmpUint64(a.Term, b.Term)
	})
	return out
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// walState is what reading a WAL directory found.
type walState struct {
	segs []segment
	last segmentScan // the last segment's scan: a torn tail to cut off, if any
	r    *replay
}

// readWAL reads and checks every segment in dir, changing nothing.
func readWAL(fsys FS, dir string, snap SnapshotMark) (*walState, error) {
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return nil, err
	}
	st := &walState{segs: segs, r: &replay{snap: snap}}
	for i, s := range segs {
		file := path.Join(dir, s.name)
		buf, err := fsys.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("wal: read %s: %w", file, err)
		}
		scan, err := scanSegment(file, buf, i == len(segs)-1)
		if err != nil {
			return nil, err
		}
		if err := st.r.segment(file, s, scan, i == 0); err != nil {
			return nil, err
		}
		st.last = scan
	}
	return st, nil
}
