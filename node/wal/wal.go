package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/internal/plant"
)

// DefaultSegmentBytes is the segment size of Options' zero value, etcd's.
const DefaultSegmentBytes = 64 << 20

// Options configure a WAL.
type Options struct {
	// SegmentBytes is the size past which the next write goes to a new
	// segment (a segment exceeds it by at most one Save). Zero means
	// DefaultSegmentBytes.
	SegmentBytes int64
	// Planted plants bugs for the simulator's tests of its checks (see
	// package plant; only plumb's own packages can set it). The WAL acts
	// on LazyFsync.
	Planted plant.Bugs
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.SegmentBytes < 0:
		return o, fmt.Errorf("wal: SegmentBytes %d is negative", o.SegmentBytes)
	case o.SegmentBytes == 0:
		o.SegmentBytes = DefaultSegmentBytes
	}
	return o, nil
}

// SnapshotMark names a snapshot by the index and term of the last entry it
// covers.
type SnapshotMark struct{ Index, Term uint64 }

// Contents is what Open read.
type Contents struct {
	// Metadata is what Create was given.
	Metadata []byte
	// HardState is the latest hard state saved, nil if none was.
	HardState *raftpb.HardState
	// Entries is raft's log after the caller's snapshot: every entry with
	// an index above snap.Index, contiguous, in order, as the last writes
	// left it (an entry saved later replaces the one at its index and
	// everything after it, as raft's truncation does).
	Entries []*raftpb.Entry
	// Snapshot is the caller's snapshot mark, checked against the WAL's
	// records (zero if the caller passed zero).
	Snapshot SnapshotMark
	// TornTail says what Open cut off the last segment, nil if nothing.
	TornTail *TornTail
}

// TornTail describes the torn write Open removed from the end of the WAL.
type TornTail struct {
	File         string // the last segment
	Offset       int64  // its new size
	DroppedBytes int64
}

// WAL is raft's write-ahead log: its hard state, entries and snapshot marks
// in a directory of append-only segment files. Save makes a Ready's hard
// state and entries durable with one fsync, which must return BEFORE the
// messages of that Ready are sent.
//
// A WAL is not safe for concurrent use. After a failed fsync it refuses
// every write (what reached the disk is unknown, and retrying an fsync can
// report success for data the kernel already dropped): Close it and Open
// the directory again.
type WAL struct {
	fsys     FS
	dir      string
	opts     Options
	metadata []byte

	segs []segment // the segments present, oldest first; the last one is written
	f    File      // the last segment, open for appending
	size int64     // the last segment's size
	// prologueBytes is the size of the last segment's prologue: a segment
	// holding no more is never rolled, so each holds at least one batch.
	prologueBytes int64

	lastIndex uint64            // index of the last entry, or of a newer snapshot mark
	hs        *raftpb.HardState // the last hard state saved (never nil)
	// hsPending: hs changed only the commit index and is not written yet;
	// the next batch that is synced carries it (see Save).
	hsPending bool
	mark      SnapshotMark // the newest snapshot mark recorded

	enc        encoder
	batchStart int64 // offset in the last segment of the latest batch (tests tear it)
	err        error // set by a failed fsync: the WAL takes no more writes
	closed     bool
	lazy       bool // the planted LazyFsync left written batches unsynced
}

// Exists reports whether dir holds a WAL segment.
func Exists(fsys FS, dir string) (bool, error) {
	names, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	for _, n := range names {
		if _, _, ok := parseSegmentName(n); ok {
			return true, nil
		}
	}
	return false, nil
}

// Create makes a new WAL in dir, which must not hold one, recording
// metadata (the node keeps its member and cluster IDs there); every segment
// repeats it. dir and its first segment are durable when Create returns.
func Create(fsys FS, dir string, metadata []byte, opts Options) (*WAL, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	dir = path.Clean(dir)
	if len(metadata) > MaxRecordBytes {
		return nil, fmt.Errorf("%w: metadata of %d bytes", ErrRecordTooLarge, len(metadata))
	}
	switch exists, err := Exists(fsys, dir); {
	case err != nil:
		return nil, err
	case exists:
		return nil, fmt.Errorf("%w: %s", ErrExist, dir)
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	if err := syncParents(fsys, dir); err != nil {
		return nil, err
	}
	if err := removeTmp(fsys, dir, segmentSuffix+tmpSuffix); err != nil {
		return nil, err
	}
	w := &WAL{
		fsys:     fsys,
		dir:      dir,
		opts:     opts,
		metadata: append([]byte(nil), metadata...),
		hs:       &raftpb.HardState{},
	}
	if err := w.startSegment(0, 1); err != nil {
		return nil, err
	}
	return w, nil
}

// Open reads the WAL in dir: the metadata, the latest hard state, and the
// log after snap, the snapshot the caller loaded (zero: from the start).
// snap must have been recorded with SaveSnapshot (SnapshotMarks lists the
// ones that were). The WAL returned appends after the last valid record.
//
// A torn write at the end of the last segment (what a crash during a Save
// leaves) is cut off, and the cut synced, before Open returns. A bad record
// anywhere else fails Open with a *CorruptError. Open changes files (the
// cut, and removing .tmp files a crash left) only once every check passed.
func Open(fsys FS, dir string, snap SnapshotMark, opts Options) (*WAL, *Contents, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	dir = path.Clean(dir)
	st, err := readWAL(fsys, dir, snap)
	if err != nil {
		return nil, nil, err
	}
	if err := st.r.checkSnapshot(snap); err != nil {
		return nil, nil, err
	}
	ents, err := st.r.entriesAfter(snap)
	if err != nil {
		return nil, nil, err
	}
	last := path.Join(dir, st.segs[len(st.segs)-1].name)
	f, err := fsys.OpenAppend(last)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open %s: %w", last, err)
	}
	c := &Contents{Metadata: st.r.metadata, HardState: st.r.hs, Entries: ents, Snapshot: snap}
	if st.last.torn {
		if c.TornTail, err = repairTail(f, last, st.last.end); err != nil {
			return nil, nil, errors.Join(err, f.Close())
		}
	}
	if err := removeTmp(fsys, dir, segmentSuffix+tmpSuffix); err != nil {
		return nil, nil, errors.Join(err, f.Close())
	}
	w := &WAL{
		fsys:          fsys,
		dir:           dir,
		opts:          opts,
		metadata:      st.r.metadata,
		segs:          st.segs,
		f:             f,
		size:          st.last.end,
		prologueBytes: st.r.prologueBytes,
		lastIndex:     max(st.r.lastIndex, snap.Index),
		hs:            &raftpb.HardState{},
	}
	if c.HardState != nil {
		w.hs = proto.CloneOf(c.HardState)
	}
	for _, m := range st.r.marks {
		if m.Index >= w.mark.Index {
			w.mark = m
		}
	}
	return w, c, nil
}

// repairTail cuts the torn write off the end of the last segment.
func repairTail(f File, file string, end int64) (*TornTail, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("wal: repair %s: %w", file, err)
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("wal: repair %s: truncate to %d: %w", file, end, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("wal: repair %s: %w", file, err)
	}
	return &TornTail{File: file, Offset: end, DroppedBytes: size - end}, nil
}

// SnapshotMarks returns the snapshot marks recorded in the WAL in dir that a
// restart may use, in index order: those at or below the latest hard
// state's commit index (a snapshot above it would have raft start with
// applied > committed). Load the newest snapshot file among them
// (Snapshotter.LoadNewestAvailable) and pass its mark to Open: the newest
// snapshot file may be one whose mark never reached the WAL.
func SnapshotMarks(fsys FS, dir string) ([]SnapshotMark, error) {
	st, err := readWAL(fsys, path.Clean(dir), SnapshotMark{})
	if err != nil {
		return nil, err
	}
	return st.r.snapshotMarks(), nil
}

func (w *WAL) usable() error {
	if w.closed {
		return ErrClosed
	}
	return w.err
}

func isEmptyHardState(hs *raftpb.HardState) bool {
	return hs.GetTerm() == 0 && hs.GetVote() == 0 && hs.GetCommit() == 0
}

func sameHardState(a, b *raftpb.HardState) bool {
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

// Save appends ents and then hs (if not empty and not the one saved last)
// and fsyncs once; with nothing to write it returns at once without an
// fsync. When it returns nil, a crash loses none of it, with one exception
// that raft allows (raft.MustSync): a hard state that changes only the
// commit index, given without entries, is kept and written by the next
// batch that must be synced anyway (entries, a snapshot mark, a new
// segment's prologue, Flush or Close). A crash before then loses it, and
// the member learns the commit index from its leader again. That saves an
// fsync for every commit a leader or follower learns between appends.
//
// Entries are raft's: contiguous, the first at most one past the last
// index saved (lower replaces a suffix of the log), never replacing a
// committed entry; anything else is a bug in the caller and panics.
//
// On an error nothing of the call is durable. A failed write is undone and
// the WAL stays usable (a full disk may clear); a failed fsync leaves it
// refusing writes.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if err := w.usable(); err != nil {
		return err
	}
	newHS := !isEmptyHardState(hs) && !sameHardState(hs, w.hs)
	if len(ents) == 0 && !newHS {
		return nil
	}
	if len(ents) == 0 && hs.GetTerm() == w.hs.GetTerm() && hs.GetVote() == w.hs.GetVote() {
		w.hs, w.hsPending = proto.CloneOf(hs), true
		return nil
	}
	w.checkEntries(ents)
	if err := w.maybeRoll(); err != nil {
		return err
	}
	w.enc.reset(w.size)
	for _, e := range ents {
		if err := w.enc.addProto(recordEntry, e); err != nil {
			return err
		}
	}
	hsRecord := w.hs
	if newHS {
		hsRecord = hs
	}
	if newHS || w.hsPending {
		if err := w.enc.addProto(recordHardState, hsRecord); err != nil {
			return err
		}
	}
	if err := w.writeBatch(); err != nil {
		return err
	}
	if len(ents) > 0 {
		w.lastIndex = ents[len(ents)-1].GetIndex()
	}
	if newHS {
		w.hs = proto.CloneOf(hs)
	}
	w.hsPending = false
	return nil
}

// Flush writes and syncs a hard state Save kept pending, if there is one.
func (w *WAL) Flush() error {
	if err := w.usable(); err != nil {
		return err
	}
	if !w.hsPending {
		return nil
	}
	if err := w.maybeRoll(); err != nil {
		return err
	}
	if !w.hsPending { // the new segment's prologue carried it
		return nil
	}
	w.enc.reset(w.size)
	if err := w.enc.addProto(recordHardState, w.hs); err != nil {
		return err
	}
	if err := w.writeBatch(); err != nil {
		return err
	}
	w.hsPending = false
	return nil
}

// checkEntries panics if ents are not what raft hands over: a gap in the
// log would make the WAL unreadable, and replacing a committed entry is a
// broken raft invariant.
func (w *WAL) checkEntries(ents []*raftpb.Entry) {
	for i, e := range ents {
		if i > 0 && e.GetIndex() != ents[i-1].GetIndex()+1 {
			panic(fmt.Sprintf("wal: Save: entry %d follows entry %d", e.GetIndex(), ents[i-1].GetIndex()))
		}
	}
	if len(ents) == 0 {
		return
	}
	first := ents[0].GetIndex()
	switch {
	case first == 0:
		panic("wal: Save: entry with index 0")
	case first > w.lastIndex+1:
		panic(fmt.Sprintf("wal: Save: entry %d would leave a gap after the last index %d "+
			"(record an installed snapshot with SaveSnapshot before its entries)", first, w.lastIndex))
	case first <= w.hs.GetCommit():
		panic(fmt.Sprintf("wal: Save: entry %d would replace a committed entry (commit %d)", first, w.hs.GetCommit()))
	}
}

// SaveSnapshot records, and fsyncs, that a snapshot at m was saved. Call it
// after the snapshot file is durable (Snapshotter.Save) and before
// ReleaseTo; for a snapshot raft received (a Ready's Snapshot), call it
// BEFORE saving that Ready's entries, which follow m.Index. m.Term must be
// the term of the entry at m.Index: Open takes a mark whose term differs
// from the WAL's entry there for a snapshot raft restored over a
// conflicting log, and drops the entries recorded after that index before
// the mark. A mark older than one already recorded is allowed (a member
// that restarted from an older snapshot, its newest file being corrupt,
// snapshots again below the newest mark).
func (w *WAL) SaveSnapshot(m SnapshotMark) error {
	if err := w.usable(); err != nil {
		return err
	}
	if m.Index == 0 {
		return errors.New("wal: SaveSnapshot: snapshot mark with index 0")
	}
	if err := w.maybeRoll(); err != nil {
		return err
	}
	w.enc.reset(w.size)
	if w.hsPending {
		// The commit index first: SnapshotMarks offers only marks at or
		// below the durable commit.
		if err := w.enc.addProto(recordHardState, w.hs); err != nil {
			return err
		}
	}
	w.enc.add(recordSnapshot, encodeMark(m))
	if err := w.writeBatch(); err != nil {
		return err
	}
	w.hsPending = false
	if m.Index >= w.mark.Index {
		w.mark = m // the newest, which new segments carry
	}
	w.lastIndex = max(w.lastIndex, m.Index)
	return nil
}

// writeBatch appends the encoder's batch to the last segment and fsyncs it.
func (w *WAL) writeBatch() error {
	name := w.tailName()
	w.batchStart = w.size
	n, err := w.f.Write(w.enc.buf)
	if err != nil {
		if n > 0 {
			// Cut the partial batch off, so the next one starts at a
			// record boundary.
			if terr := w.f.Truncate(w.size); terr != nil {
				w.err = fmt.Errorf("wal: write %s failed and the partial write could not be cut off; "+
					"the WAL takes no more writes (reopen it): %w", name, errors.Join(err, terr))
				return w.err
			}
		}
		return fmt.Errorf("wal: write %s: %w", name, err)
	}
	w.size += int64(n)
	if w.opts.Planted.LazyFsync {
		w.lazy = true // the planted bug: acknowledged before it is durable
		return nil
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("wal: fsync %s failed, so what reached the disk is unknown; "+
			"the WAL takes no more writes (reopen it): %w", name, err)
		return w.err
	}
	return nil
}

// SyncLazy fsyncs what the planted LazyFsync bug left unsynced; without it,
// every Save is already durable and SyncLazy does nothing.
func (w *WAL) SyncLazy() error {
	if !w.lazy {
		return nil
	}
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("wal: fsync %s failed, so what reached the disk is unknown; "+
			"the WAL takes no more writes (reopen it): %w", w.tailName(), err)
		return w.err
	}
	w.lazy = false
	return nil
}

func (w *WAL) tailName() string { return path.Join(w.dir, w.segs[len(w.segs)-1].name) }

// maybeRoll starts a new segment if the last one has reached SegmentBytes.
// Rolling before a write, not after, means a failed roll fails a Save that
// has written nothing.
func (w *WAL) maybeRoll() error {
	if w.size < w.opts.SegmentBytes || w.size == w.prologueBytes {
		return nil
	}
	if err := w.SyncLazy(); err != nil {
		return err
	}
	return w.startSegment(w.segs[len(w.segs)-1].seq+1, w.lastIndex+1)
}

// startSegment creates segment (seq, index) with its prologue, durably: the
// prologue is written to a temporary name and synced, then renamed into
// place and the directory synced, so that a segment with its final name
// always has a whole prologue. It becomes the segment written to.
func (w *WAL) startSegment(seq, index uint64) error {
	seg := segment{seq: seq, index: index, name: segmentName(seq, index)}
	final := path.Join(w.dir, seg.name)
	tmp := final + tmpSuffix
	if err := w.encodePrologue(seg); err != nil {
		return err
	}
	f, err := w.fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("wal: create %s: %w", tmp, err)
	}
	err = writeAndSync(f, w.enc.buf)
	if err == nil {
		err = w.fsys.Rename(tmp, final)
	}
	if err != nil {
		return fmt.Errorf("wal: start segment %s: %w", final, errors.Join(err, f.Close(), w.fsys.Remove(tmp)))
	}
	if err := w.fsys.SyncDir(w.dir); err != nil {
		// The segment may or may not survive a crash; either is a valid
		// WAL, but this one cannot know which, so it stops.
		w.err = fmt.Errorf("wal: sync directory %s after creating %s: %w", w.dir, final, err)
		return errors.Join(w.err, f.Close())
	}
	old := w.f
	w.f, w.size, w.prologueBytes = f, int64(len(w.enc.buf)), int64(len(w.enc.buf))
	w.hsPending = false // the prologue, synced, holds the latest hard state
	w.segs = append(w.segs, seg)
	if old != nil {
		if err := old.Close(); err != nil {
			return fmt.Errorf("wal: close the previous segment: %w", err)
		}
	}
	return nil
}

// encodePrologue leaves seg's prologue in the encoder: header, metadata and
// the last hard state. The header records the prologue's length, known
// once the rest is encoded, hence two passes.
func (w *WAL) encodePrologue(seg segment) error {
	hdr := segmentHeader{seq: seg.seq, index: seg.index, mark: w.mark}
	for pass := 0; pass < 2; pass++ {
		w.enc.reset(0)
		w.enc.add(recordSegment, hdr.encode())
		w.enc.add(recordMetadata, w.metadata)
		if !isEmptyHardState(w.hs) {
			if err := w.enc.addProto(recordHardState, w.hs); err != nil {
				return err
			}
		}
		hdr.prologueBytes = int64(len(w.enc.buf))
	}
	return nil
}

func writeAndSync(f File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// ReleaseTo removes the segments whose every entry is at or below index:
// all but the one holding index+1, the ones after it, and always the last.
// Call it with the index of the oldest snapshot still kept, once that
// snapshot and its mark are durable: Open from that snapshot still finds
// its mark (each segment repeats the newest) and every entry after it.
func (w *WAL) ReleaseTo(index uint64) error {
	if err := w.usable(); err != nil {
		return err
	}
	// Segment i holds only entries below segment i+1's name index.
	n := 0
	for n+1 < len(w.segs) && w.segs[n+1].index <= index+1 {
		n++
	}
	if n == 0 {
		return nil
	}
	// Oldest first: a crash part way leaves a hole-free sequence.
	for i := 0; i < n; i++ {
		if err := w.fsys.Remove(path.Join(w.dir, w.segs[0].name)); err != nil {
			return fmt.Errorf("wal: release %s: %w", w.segs[0].name, err)
		}
		w.segs = w.segs[1:]
	}
	if err := w.fsys.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: release: sync directory %s: %w", w.dir, err)
	}
	return nil
}

// Close writes a pending hard state (see Save) and closes the WAL;
// everything else Save returned nil for is already durable.
func (w *WAL) Close() error {
	if w.closed {
		return ErrClosed
	}
	flushErr := w.Flush()
	w.closed = true
	if flushErr != nil {
		return errors.Join(fmt.Errorf("wal: close: write the pending hard state: %w", flushErr), w.f.Close())
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", w.tailName(), err)
	}
	return nil
}

// syncParents makes dir's entry, and its parents' entries, durable.
func syncParents(fsys FS, dir string) error {
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if err := fsys.SyncDir(path.Dir(d)); err != nil {
			return fmt.Errorf("wal: sync directory %s: %w", path.Dir(d), err)
		}
	}
	return nil
}

// removeTmp removes the files in dir named with suffix, left by a crash
// before a rename, and syncs dir if there were any.
func removeTmp(fsys FS, dir, suffix string) error {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", dir, err)
	}
	removed := false
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			if err := fsys.Remove(path.Join(dir, n)); err != nil {
				return fmt.Errorf("wal: remove %s: %w", n, err)
			}
			removed = true
		}
	}
	if removed {
		if err := fsys.SyncDir(dir); err != nil {
			return fmt.Errorf("wal: sync directory %s: %w", dir, err)
		}
	}
	return nil
}
