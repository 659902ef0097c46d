package backend_test

import (
	"testing"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/backend/backendtest"
)

func TestMemory(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return backend.NewMemory() })
}

// TestMemoryReopen checks what the simulator relies on: a Memory keeps its
// committed state through Close, loses the open batch, and takes new batches.
func TestMemoryReopen(t *testing.T) {
	m := backend.NewMemory()
	b := m.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("durable"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b = m.Begin()
	b.Put([]byte("a"), []byte("k"), []byte("lost"))
	b.Put([]byte("a"), []byte("j"), []byte("lost"))
	if err := m.Close(); err != nil { // the crash
		t.Fatal(err)
	}
	if v, ok := m.Get([]byte("a"), []byte("k")); !ok || string(v) != "durable" {
		t.Fatalf("after Close: %q, %v; want durable", v, ok)
	}
	if _, ok := m.Get([]byte("a"), []byte("j")); ok {
		t.Fatal("uncommitted key survived Close")
	}
	b = m.Begin()
	b.Put([]byte("a"), []byte("j"), []byte("again"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if m.Size() != int64(len("kdurable")+len("jagain")) {
		t.Fatalf("Size = %d", m.Size())
	}
}

// TestMemoryKeyOrderMaintained exercises the sorted-key maintenance paths of
// Commit: appends, merges of keys landing in the middle, and deletions.
func TestMemoryKeyOrderMaintained(t *testing.T) {
	m := backend.NewMemory()
	bucket := []byte("b")
	want := map[string]bool{}
	// A fixed pseudo-random walk (LCG) over a small key space.
	x := uint32(1)
	for i := range 2000 {
		b := m.Begin()
		for range 1 + i%7 {
			x = x*1664525 + 1013904223
			k := string([]byte{byte(x >> 24), byte(x >> 16 & 3)})
			if x>>8&3 == 0 {
				b.Delete(bucket, []byte(k))
				delete(want, k)
			} else {
				b.Put(bucket, []byte(k), []byte("v"))
				want[k] = true
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var prev []byte
	n := 0
	err := m.ForEach(bucket, func(k, _ []byte) error {
		if prev != nil && string(prev) >= string(k) {
			t.Fatalf("ForEach order: %q after %q", k, prev)
		}
		if !want[string(k)] {
			t.Fatalf("unexpected key %q", k)
		}
		prev = append(prev[:0], k...)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("ForEach saw %d keys; want %d", n, len(want))
	}
}
