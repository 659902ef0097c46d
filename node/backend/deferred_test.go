package backend_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/backend/backendtest"
)

func TestDeferredConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return backend.NewDeferred(backend.NewMemory()) })
}

// model is what a Backend should hold: bucket -> key -> value.
type model map[string]map[string]string

func (m model) clone() model {
	out := model{}
	for b, kv := range m {
		out[b] = map[string]string{}
		for k, v := range kv {
			out[b][k] = v
		}
	}
	return out
}

func (m model) size() int64 {
	var n int64
	for _, kv := range m {
		for k, v := range kv {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// check compares every bucket of r, by Get and by ForEach, with want.
func check(t *testing.T, what string, r backend.Reader, want model, buckets []string, keys int) {
	t.Helper()
	for _, b := range buckets {
		var got []string
		if err := r.ForEach([]byte(b), func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil }); err != nil {
			t.Fatal(err)
		}
		var exp []string
		for k, v := range want[b] {
			exp = append(exp, k+"="+v)
		}
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Fatalf("%s: bucket %s holds %v, want %v", what, b, got, exp)
		}
		for i := range keys {
			k := fmt.Sprintf("k%02d", i)
			v, ok := r.Get([]byte(b), []byte(k))
			wv, wok := want[b][k]
			if ok != wok || string(v) != wv {
				t.Fatalf("%s: Get(%s, %s) = %q %v, want %q %v", what, b, k, v, ok, wv, wok)
			}
		}
	}
}

// TestDeferredCrash: over 200 seeds of random batches, rollbacks, syncs and
// crashes (a new Deferred over the same underlying Memory, the overlay
// lost), reads always see every committed batch, and a crash leaves
// exactly the state of the last Sync.
func TestDeferredCrash(t *testing.T) {
	buckets := []string{"a", "b"}
	const keys = 12
	for seed := uint64(0); seed < 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		under := backend.NewMemory()
		d := backend.NewDeferred(under)
		visible, durable := model{}, model{}
		for step := range 300 {
			switch r := rng.IntN(10); {
			case r < 6: // a batch, committed or rolled back
				b := d.Begin()
				next := visible.clone()
				for range 1 + rng.IntN(5) {
					bk, k := buckets[rng.IntN(len(buckets))], fmt.Sprintf("k%02d", rng.IntN(keys))
					if rng.IntN(3) == 0 {
						b.Delete([]byte(bk), []byte(k))
						delete(next[bk], k)
					} else {
						v := fmt.Sprintf("v%d-%d", seed, step)
						b.Put([]byte(bk), []byte(k), []byte(v))
						if next[bk] == nil {
							next[bk] = map[string]string{}
						}
						next[bk][k] = v
					}
				}
				check(t, fmt.Sprintf("seed %d step %d: the batch's own view", seed, step), b, next, buckets, keys)
				if rng.IntN(5) == 0 {
					b.Rollback()
					break
				}
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
				visible = next
			case r < 8:
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				durable = visible.clone()
				check(t, fmt.Sprintf("seed %d step %d: the underlying after Sync", seed, step), under, durable, buckets, keys)
			default: // a crash: the overlay is lost, the underlying stays
				d = backend.NewDeferred(under)
				visible = durable.clone()
			}
			check(t, fmt.Sprintf("seed %d step %d", seed, step), d, visible, buckets, keys)
			if d.Size() != visible.size() {
				t.Fatalf("seed %d step %d: Size %d, want %d", seed, step, d.Size(), visible.size())
			}
		}
	}
}
