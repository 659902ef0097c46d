package backend_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/plumbdb/plumb/node/backend"
)

var holdBuckets = []string{"a", "b", "c"}

// contents describes everything a reader can see of m: each bucket in
// ForEach order, and Size.
func contents(t *testing.T, m *backend.Memory) string {
	t.Helper()
	var sb strings.Builder
	for _, name := range holdBuckets {
		fmt.Fprintf(&sb, "%s:", name)
		err := m.ForEach([]byte(name), func(k, v []byte) error {
			got, ok := m.Get([]byte(name), k)
			if !ok || string(got) != string(v) {
				t.Fatalf("Get(%q, %q) = %q, %v; ForEach gave %q", name, k, got, ok, v)
			}
			fmt.Fprintf(&sb, " %q=%q", k, v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "size %d", m.Size())
	return sb.String()
}

// batch commits one batch of writes: "k=v" puts, "-k" deletes, in bucket.
func batch(t *testing.T, m *backend.Memory, bucket string, writes ...string) {
	t.Helper()
	b := m.Begin()
	for _, w := range writes {
		if k, ok := strings.CutPrefix(w, "-"); ok {
			b.Delete([]byte(bucket), []byte(k))
			continue
		}
		k, v, _ := strings.Cut(w, "=")
		b.Put([]byte(bucket), []byte(k), []byte(v))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// holdSetup commits the state the hold tests start from.
func holdSetup(t *testing.T) *backend.Memory {
	m := backend.NewMemory()
	batch(t, m, "a", "b=1", "d=2", "f=3", "h=4")
	batch(t, m, "b", "only=5")
	return m
}

// heldWrites commits, in several batches, every kind of change: overwrite,
// delete, new keys in the middle and at the end, a key written twice, a
// deleted key written again, a new bucket, a bucket emptied.
func heldWrites(t *testing.T, m *backend.Memory) {
	batch(t, m, "a", "b=10", "-d", "c=new", "z=end", "-nothing")
	batch(t, m, "a", "b=11", "d=back", "-f", "a=first")
	batch(t, m, "b", "-only")
	batch(t, m, "c", "x=1", "y=2")
	batch(t, m, "c", "-x")
	b := m.Begin() // a batch that writes nothing
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

const afterHeldWrites = `a: "a"="first" "b"="11" "c"="new" "d"="back" "h"="4" "z"="end"
b:
c: "y"="2"
size 26`

func TestMemoryCrashUndoesHeldCommits(t *testing.T) {
	m := holdSetup(t)
	before := contents(t, m)
	commits := m.CommitCount()
	m.Hold()
	if !m.Held() {
		t.Fatal("Held() = false after Hold")
	}
	heldWrites(t, m)
	if got := contents(t, m); got != afterHeldWrites {
		t.Fatalf("while held, reads see\n%s\nwant\n%s", got, afterHeldWrites)
	}
	if got := m.CommitCount() - commits; got != 6 {
		t.Fatalf("CommitCount rose by %d over 6 held commits", got)
	}
	if !m.Crash() {
		t.Fatal("Crash undid held commits but returned false")
	}
	if m.Held() {
		t.Fatal("Held() = true after Crash")
	}
	if got := contents(t, m); got != before {
		t.Fatalf("after the crash\n%s\nwant the state before Hold\n%s", got, before)
	}
	if m.CommitCount()-commits != 6 {
		t.Fatal("Crash changed CommitCount")
	}
	// The hold is over: the next commit survives a crash.
	batch(t, m, "a", "k=v")
	if m.Crash() {
		t.Fatal("Crash with nothing held returned true")
	}
	if v, ok := m.Get([]byte("a"), []byte("k")); !ok || string(v) != "v" {
		t.Fatalf("a commit after the crash: %q, %v", v, ok)
	}
}

func TestMemoryReleaseKeepsHeldCommits(t *testing.T) {
	m := holdSetup(t)
	m.Hold()
	heldWrites(t, m)
	m.Release()
	if m.Held() {
		t.Fatal("Held() = true after Release")
	}
	if m.Crash() {
		t.Fatal("Crash after Release returned true")
	}
	if got := contents(t, m); got != afterHeldWrites {
		t.Fatalf("after Release and a crash\n%s\nwant\n%s", got, afterHeldWrites)
	}
}

// TestMemoryCrashDiscardsOpenBatch: an open batch is discarded (held or
// not), the Memory takes a new batch, and the new batch sees none of the
// discarded writes (the reused maps were cleared).
func TestMemoryCrashDiscardsOpenBatch(t *testing.T) {
	for _, held := range []bool{false, true} {
		m := holdSetup(t)
		before := contents(t, m)
		if held {
			m.Hold()
		}
		b := m.Begin()
		b.Put([]byte("a"), []byte("b"), []byte("lost"))
		b.Delete([]byte("a"), []byte("d"))
		if m.Crash() {
			t.Fatalf("held=%v: Crash returned true with only an open batch", held)
		}
		b.Rollback() // finished already: a no-op
		if got := contents(t, m); got != before {
			t.Fatalf("held=%v: after the crash\n%s\nwant\n%s", held, got, before)
		}
		b = m.Begin()
		if v, _ := b.Get([]byte("a"), []byte("b")); string(v) != "1" {
			t.Fatalf("held=%v: a new batch sees %q from the discarded one", held, v)
		}
		if _, ok := b.Get([]byte("a"), []byte("d")); !ok {
			t.Fatalf("held=%v: a new batch sees the discarded delete", held)
		}
		b.Rollback()
	}
}

// TestMemoryHoldDoesNotNest: Hold while held keeps the first mark, one
// Release completes everything, Release when not held does nothing.
func TestMemoryHoldDoesNotNest(t *testing.T) {
	m := holdSetup(t)
	before := contents(t, m)
	m.Release()
	if m.Held() {
		t.Fatal("Release made the Memory held")
	}
	m.Hold()
	batch(t, m, "a", "one=1")
	m.Hold()
	batch(t, m, "a", "two=2")
	if !m.Crash() {
		t.Fatal("Crash returned false")
	}
	if got := contents(t, m); got != before {
		t.Fatalf("after Hold, Hold, Crash\n%s\nwant\n%s", got, before)
	}

	m.Hold()
	batch(t, m, "a", "one=1")
	m.Hold()
	batch(t, m, "a", "two=2")
	m.Release()
	if m.Held() || m.Crash() {
		t.Fatal("one Release did not complete both Holds")
	}
	if _, ok := m.Get([]byte("a"), []byte("one")); !ok {
		t.Fatal("the first held commit was lost")
	}
}

// memModel is the reference the randomized test checks Memory against.
type memModel struct {
	committed   map[string]map[string]string
	atHold      map[string]map[string]string // nil when not held
	commits     int
	heldCommits int
}

func cloneState(s map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for b, kv := range s {
		out[b] = map[string]string{}
		for k, v := range kv {
			out[b][k] = v
		}
	}
	return out
}

func (md *memModel) String() string {
	var sb strings.Builder
	size := 0
	for _, name := range holdBuckets {
		fmt.Fprintf(&sb, "%s:", name)
		kv := md.committed[name]
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, " %q=%q", k, kv[k])
			size += len(k) + len(kv[k])
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "size %d", size)
	return sb.String()
}

// TestMemoryHoldModel interleaves batches (committed, rolled back, or left
// open), Hold, Release, Crash and Close at random, and after every step
// compares everything a reader sees with a reference model.
func TestMemoryHoldModel(t *testing.T) {
	seeds, steps := uint64(100), 400
	if testing.Short() {
		seeds = 10
	}
	for seed := uint64(0); seed < seeds; seed++ {
		runHoldModel(t, seed, steps)
	}
}

func runHoldModel(t *testing.T, seed uint64, steps int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	fail := func(step int, format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d step %d (go test ./node/backend -run TestMemoryHoldModel): %s", seed, step, fmt.Sprintf(format, args...))
	}
	m := backend.NewMemory()
	md := &memModel{committed: map[string]map[string]string{}}
	revision := 0
	key := func() string {
		if rng.IntN(3) == 0 { // ascending, as revision keys are
			revision++
			return fmt.Sprintf("r%05d", revision)
		}
		return string([]byte{byte('a' + rng.IntN(8)), byte('0' + rng.IntN(3))})
	}
	var open backend.Batch
	var pending map[string]map[string]*string // nil: deleted
	for step := range steps {
		switch r := rng.IntN(100); {
		case r < 55: // a batch
			if open == nil {
				open = m.Begin()
				pending = map[string]map[string]*string{}
			}
			for range 1 + rng.IntN(6) {
				b := holdBuckets[rng.IntN(len(holdBuckets))]
				if pending[b] == nil {
					pending[b] = map[string]*string{}
				}
				k := key()
				if rng.IntN(4) == 0 {
					open.Delete([]byte(b), []byte(k))
					pending[b][k] = nil
				} else {
					v := strings.Repeat(string(rune('A'+rng.IntN(26))), rng.IntN(5))
					open.Put([]byte(b), []byte(k), []byte(v))
					pending[b][k] = &v
				}
			}
			switch rng.IntN(10) {
			case 0, 1: // left open
				continue
			case 2:
				open.Rollback()
			default:
				if err := open.Commit(); err != nil {
					fail(step, "Commit: %v", err)
				}
				md.commits++
				if md.atHold != nil {
					md.heldCommits++
				}
				for b, kv := range pending {
					for k, v := range kv {
						if md.committed[b] == nil {
							md.committed[b] = map[string]string{}
						}
						if v == nil {
							delete(md.committed[b], k)
						} else {
							md.committed[b][k] = *v
						}
					}
				}
			}
			open, pending = nil, nil
		case r < 70:
			m.Hold()
			if md.atHold == nil {
				md.atHold = cloneState(md.committed)
			}
		case r < 82:
			m.Release()
			md.atHold, md.heldCommits = nil, 0
		case r < 95:
			want := md.heldCommits > 0
			if got := m.Crash(); got != want {
				fail(step, "Crash() = %v, want %v", got, want)
			}
			if md.atHold != nil {
				md.committed = md.atHold
			}
			md.atHold, md.heldCommits = nil, 0
			open, pending = nil, nil
		default:
			if err := m.Close(); err != nil {
				fail(step, "Close: %v", err)
			}
			open, pending = nil, nil
		}
		if got, want := contents(t, m), md.String(); got != want {
			fail(step, "Memory\n%s\nmodel\n%s", got, want)
		}
		if m.Held() != (md.atHold != nil) {
			fail(step, "Held() = %v", m.Held())
		}
		if m.CommitCount() != md.commits {
			fail(step, "CommitCount() = %d, want %d", m.CommitCount(), md.commits)
		}
	}
}
