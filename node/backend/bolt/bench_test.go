package bolt

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkCommit commits batches of puts of 256-byte values under
// ascending 8-byte keys (as revisions are), one Commit (and its fsyncs) per
// iteration.
func BenchmarkCommit(b *testing.B) {
	for _, puts := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("puts=%d", puts), func(b *testing.B) {
			be := mustOpen(b, filepath.Join(b.TempDir(), "db"), Options{})
			defer func() { _ = be.Close() }()
			bucket := []byte("key")
			key := make([]byte, 8)
			value := make([]byte, 256)
			var rev uint64
			b.SetBytes(int64(puts * (len(key) + len(value))))
			b.ReportAllocs()
			for b.Loop() {
				bt := be.Begin()
				for range puts {
					rev++
					binary.BigEndian.PutUint64(key, rev)
					bt.Put(bucket, key, value)
				}
				if err := bt.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			commits := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(commits, "commits/s")
			b.ReportMetric(commits*float64(puts), "puts/s")
		})
	}
}

// BenchmarkGet reads random keys of 100,000 committed ones through the
// Backend's cached read transaction.
func BenchmarkGet(b *testing.B) {
	const keys = 100_000
	be := mustOpen(b, filepath.Join(b.TempDir(), "db"), Options{})
	defer func() { _ = be.Close() }()
	bucket := []byte("key")
	value := make([]byte, 256)
	for start := 0; start < keys; start += 10_000 {
		bt := be.Begin()
		for i := start; i < start+10_000; i++ {
			bt.Put(bucket, binary.BigEndian.AppendUint64(nil, uint64(i)), value)
		}
		mustCommit(b, bt)
	}
	key := make([]byte, 8)
	x := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		x = x*6364136223846793005 + 1442695040888963407
		binary.BigEndian.PutUint64(key, x>>32%keys)
		if _, ok := be.Get(bucket, key); !ok {
			b.Fatalf("key %x missing", key)
		}
	}
}
