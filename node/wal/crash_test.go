package wal

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// durableState is what the WAL must give back after a crash: the log, hard
// state and snapshot mark of every call that returned nil, except a hard
// state Save kept pending (only its commit index changed), which a crash
// may or may not keep.
type durableState struct {
	log     []*raftpb.Entry
	hs      *raftpb.HardState
	pending *raftpb.HardState // accepted by Save, not written yet
	mark    SnapshotMark
}

// accepted is the hard state the WAL holds now, written or pending.
func (s durableState) accepted() *raftpb.HardState {
	if s.pending != nil {
		return s.pending
	}
	return s.hs
}

// walOp is one call the crash test makes.
type walOp struct {
	kind  string // "save", "snapshot", "release"
	hs    *raftpb.HardState
	ents  []*raftpb.Entry
	mark  SnapshotMark
	index uint64
}

// raftSim generates raft-plausible calls: appends, a new leader's
// overwrite of the uncommitted tail, commit advances, snapshots, releases.
type raftSim struct {
	term uint64
}

func (g *raftSim) next(rng interface {
	IntN(int) int
	Uint64N(uint64) uint64
}, s durableState) walOp {
	last := uint64(0)
	if len(s.log) > 0 {
		last = s.log[len(s.log)-1].GetIndex()
	}
	last = max(last, s.mark.Index)
	commit := s.accepted().GetCommit()
	g.term = max(g.term, s.accepted().GetTerm(), 1)
	switch r := rng.IntN(20); {
	case r < 2 && commit > s.mark.Index:
		return walOp{kind: "snapshot", mark: SnapshotMark{Index: commit, Term: termAt(s.log, commit)}}
	case r < 3:
		return walOp{kind: "release", index: s.mark.Index}
	case r < 5:
		return walOp{kind: "save", hs: hardState(g.term, 1, commit+rng.Uint64N(last-commit+1))}
	}
	lo := last + 1
	if last > commit && rng.IntN(4) == 0 {
		lo = commit + 1 + rng.Uint64N(last-commit)
		g.term++
	}
	es := make([]*raftpb.Entry, 1+rng.IntN(6))
	for i := range es {
		size := rng.IntN(120)
		if rng.IntN(10) == 0 {
			size = 700 // bigger than a segment
		}
		es[i] = ent(lo+uint64(i), g.term, strings.Repeat(string(rune('a'+rng.IntN(26))), size))
	}
	newLast := lo + uint64(len(es)) - 1
	op := walOp{kind: "save", ents: es}
	if rng.IntN(2) == 0 {
		op.hs = hardState(g.term, 1, commit+rng.Uint64N(newLast-commit+1))
	}
	return op
}

func termAt(log []*raftpb.Entry, i uint64) uint64 {
	for _, e := range log {
		if e.GetIndex() == i {
			return e.GetTerm()
		}
	}
	panic(fmt.Sprintf("no entry %d", i))
}

func (op walOp) apply(w *WAL) error {
	switch op.kind {
	case "save":
		return w.Save(op.hs, op.ents)
	case "snapshot":
		return w.SaveSnapshot(op.mark)
	default:
		return w.ReleaseTo(op.index)
	}
}

// applied returns s after op, or, for a torn Save, after its first n
// entries and the hard state only if withHS (entries are written first).
func (s durableState) applied(op walOp, n int, withHS bool) durableState {
	switch op.kind {
	case "save":
		cur := s.accepted()
		newHS := op.hs != nil && !isEmptyHardState(op.hs) && !sameHardState(op.hs, cur)
		switch {
		case len(op.ents) == 0 && !newHS:
			return s // nothing new: the WAL writes nothing
		case len(op.ents) == 0 && op.hs.GetTerm() == cur.GetTerm() && op.hs.GetVote() == cur.GetVote():
			s.pending = op.hs // a commit-only hard state: kept, not written
			return s
		}
		s.log = appendLog(s.log, op.ents[:n])
		if withHS {
			if newHS {
				s.hs = op.hs
			} else if s.pending != nil {
				s.hs = s.pending
			}
			s.pending = nil
		}
	case "snapshot":
		s.mark = op.mark
		if s.pending != nil {
			s.hs, s.pending = s.pending, nil
		}
	}
	return s
}

// candidates lists the states a crash may leave: every call that returned
// nil, with or without the hard state kept pending (a new segment's
// prologue may have written it), plus any prefix of the call in flight, by
// the WAL's write order. A crash forgets what was pending.
func (s durableState) candidates(pending *walOp) []durableState {
	bases := []durableState{s}
	if s.pending != nil {
		withPending := s
		withPending.hs = s.pending
		bases = append(bases, withPending)
	}
	// Candidates without the call in flight come first: match compares
	// entries and hard state, not the snapshot mark, and must not take a
	// mark for durable when an equal-looking state without it is possible.
	out := append([]durableState{}, bases...)
	for _, b := range bases {
		if pending == nil {
			continue
		}
		switch pending.kind {
		case "save":
			for n := 1; n <= len(pending.ents); n++ {
				out = append(out, b.applied(*pending, n, false))
			}
			out = append(out, b.applied(*pending, len(pending.ents), true))
		case "snapshot":
			out = append(out, b.applied(*pending, 0, false))
		}
	}
	for i := range out {
		out[i].pending = nil
	}
	return out
}

// match returns the candidate c is, comparing what Open returns: entries
// after the mark opened from, and the hard state.
func match(c *Contents, opened SnapshotMark, cands []durableState) (durableState, bool) {
	for _, cand := range cands {
		if diffLogs(c.Entries, after(cand.log, opened.Index)) == "" && proto.Equal(c.HardState, cand.hs) {
			return cand, true
		}
	}
	return durableState{}, false
}

// TestCrashRecoversSyncedPrefix is the durability property, over 200
// seeds: random raft-like calls on a MemFS that loses power after a random
// number of file operations (the call in flight fails part way), a Crash
// that drops or tears every unsynced write, and Open. Open must succeed and
// return exactly what the calls that returned nil saved, plus possibly a
// prefix of the call in flight: never less than was synced, never more
// than was written. Each seed goes through several crashes.
func TestCrashRecoversSyncedPrefix(t *testing.T) {
	const seeds = 200
	torn := 0
	for seed := uint64(0); seed < seeds; seed++ {
		torn += crashSeed(t, seed)
	}
	// The property is only as strong as the crashes it saw.
	t.Logf("%d of %d seeds repaired a torn tail", torn, seeds)
	if torn < seeds/4 {
		t.Fatalf("only %d of %d seeds repaired a torn tail", torn, seeds)
	}
}

// crashSeed runs one seed; it returns how many torn tails Open repaired.
func crashSeed(t *testing.T, seed uint64) int {
	rng := newRand(seed)
	ffs := &faultFS{MemFS: NewMemFS(), budget: -1}
	segmentBytes := int64(128 + rng.IntN(1024))
	w, err := Create(ffs, testDir, testMeta, Options{SegmentBytes: segmentBytes})
	if err != nil {
		t.Fatalf("seed %d: Create: %v", seed, err)
	}
	var state durableState
	sim := &raftSim{}
	torn := 0
	for crash := 0; crash < 4; crash++ {
		ffs.budget = 1 + rng.IntN(60)
		var pending *walOp
		for i := 0; i < 40 && pending == nil; i++ {
			op := sim.next(rng, state)
			switch err := op.apply(w); {
			case err == nil:
				state = state.applied(op, len(op.ents), true)
			case errors.Is(err, errInjected):
				pending = &op
			default:
				t.Fatalf("seed %d crash %d: %s: %v", seed, crash, op.kind, err)
			}
		}
		ffs.budget = -1
		ffs.Crash(rng)
		var c *Contents
		w, c, err = Open(ffs, testDir, state.mark, Options{SegmentBytes: segmentBytes})
		if err != nil {
			t.Fatalf("seed %d crash %d: Open: %v", seed, crash, err)
		}
		if c.TornTail != nil {
			torn++
		}
		got, ok := match(c, state.mark, state.candidates(pending))
		if !ok {
			t.Fatalf("seed %d crash %d: Open returned log %s hard state %v; synced log %s hard state %v, in flight %+v",
				seed, crash, span(c.Entries), c.HardState, span(after(state.log, state.mark.Index)), state.hs, pending)
		}
		if string(c.Metadata) != string(testMeta) {
			t.Fatalf("seed %d: metadata %q", seed, c.Metadata)
		}
		state = got // what survived the crash is durable now
	}
	return torn
}
