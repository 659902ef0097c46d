// Package wal is plumb's durable raft storage: the write-ahead log of raft's
// hard state and entries (WAL), snapshot files (Snapshotter), and the small
// file-system interface both go through (FS), with a real implementation
// (OSFS) and an in-memory one that models durability for the simulator
// (MemFS).
//
// What belongs here: file formats, fsync discipline, crash recovery and
// corruption detection. What does not: raft itself, the applied key-value
// state (node/backend), and deciding when to snapshot or what to retain
// (the node calls SaveSnapshot, ReleaseTo and Retain).
//
// # Imports
//
// Nothing from the project: raftpb and protobuf from outside, and the
// standard library. Only os_fs.go uses os (deps_test.go allows it in this
// package and nowhere else in node/); everything else is pure and builds for
// GOOS=js. No goroutines, channels, clocks or global randomness: MemFS
// takes a seeded *rand.Rand where it needs chance.
//
// # Contract with the caller
//
// Save makes a Ready's entries and hard state durable with one fsync, and
// must return BEFORE that Ready's messages are sent. The one exception is
// raft's (raft.MustSync): a hard state that changes only the commit index,
// without entries, is kept and written with the next batch that is synced
// anyway (entries, a snapshot mark, a segment's prologue, Flush, Close);
// a crash may lose it, and the member learns the commit index from its
// leader again. A restart goes:
//
//	marks := wal.SnapshotMarks(fsys, walDir)      // marks the WAL recorded, <= commit
//	snap := snapshotter.LoadNewestAvailable(marks) // newest valid file among them, or ErrNoSnapshot
//	w, contents := wal.Open(fsys, walDir, markOf(snap), opts)
//
// (The newest snapshot file may lack a mark: a crash between
// Snapshotter.Save and WAL.SaveSnapshot leaves it so.) Saving a snapshot
// goes: Snapshotter.Save, then WAL.SaveSnapshot, then WAL.ReleaseTo with
// the index of the oldest snapshot kept, then Snapshotter.Retain.
//
// There is no file lock (the FS has none): one process, holding one WAL
// object, owns a directory; production takes care of that above this
// package.
//
// # Files
//
// A WAL is a directory of segments named %016x-%016x.wal: a sequence number
// (consecutive, from 0) and the index its first entry was expected to have
// (the last index + 1 when it was started, so the first segment is
// 0000000000000000-0000000000000001.wal). ReleaseTo removes the oldest.
// Save appends to the last segment; once that is SegmentBytes or more, the
// next write first starts a new one. A segment is born under a .tmp name,
// its prologue written and fsynced, then renamed and the directory fsynced:
// a segment with its final name always has a whole prologue.
//
// A segment is a sequence of records, each starting at a multiple of 8:
//
//	offset  size  field
//	0       4     data length n, little-endian (at most MaxRecordBytes)
//	4       1     type: 1 segment header, 2 metadata, 3 hard state, 4 entry, 5 snapshot mark
//	5       3     zero
//	8       8     batch offset: where the write (one Save) holding this record starts
//	16      4     CRC32C (Castagnoli) of the data
//	20      4     CRC32C of bytes 0-19 of this header
//	24      n     data, then zero padding to a multiple of 8
//
// Every record has its own CRCs, not a chain as etcd's: a bad record does
// not hide the good ones after it, which is what tells corruption from a
// torn write (below). The header has its own CRC so that a damaged length
// is caught before it is believed.
//
// Data by type: a segment header is 56 bytes, "plumbwal", version (uint32,
// 1), 4 zero bytes, then uint64s: sequence, first index, prologue length,
// and the newest snapshot mark (index, term) when the segment was started.
// Metadata is the caller's bytes; hard state and entry are raftpb's
// protobuf encoding; a snapshot mark is index and term, uint64s. Every
// segment opens with a prologue written in one batch: segment header,
// metadata, and the latest hard state if there is one. So releasing old
// segments never loses metadata, hard state or the newest snapshot mark.
// Within a Save, entries come before the hard state, so a torn Save never
// keeps a commit index without the entries it commits.
//
// # Torn writes and corruption
//
// Each batch is fsynced before the next is written. So, reading the last
// segment, a bad record (a short or bad header, short or bad data, nonzero
// padding) after the prologue is a torn write, cut off by Open, when no
// record after it carries a later batch offset: everything after it then
// belongs to the one write a crash interrupted. A valid record from a later
// batch proves the bad one was synced once, so that, a bad record in any
// other segment, or in a prologue, is corruption: Open fails with a
// *CorruptError naming the file and offset and telling the operator to
// rebuild the member from its peers. A bit flip in the last batch is
// indistinguishable from a torn write and is cut off like one.
//
// Snapshots are files %016x-%016x.snap (term, index): a 24-byte header
// ("plumbsnp", version uint32, CRC32C of the body uint32, body length
// uint64) and the raftpb.Snapshot's protobuf encoding. Load skips files
// that fail their checks and falls back to older ones.
package wal
