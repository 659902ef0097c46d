package mvcc_test

import (
	"encoding/binary"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

const (
	benchKeyBytes   = 8
	benchValueBytes = 256
	benchBatchPuts  = 100 // puts per committed batch, as an apply loop batches a Ready
)

func benchKey(i int) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, benchKeyBytes), uint64(i))
}

// BenchmarkPut: one put per op, 8-byte keys (all distinct), 256-byte values,
// 100 puts per committed batch with the consistent index recorded.
func BenchmarkPut(b *testing.B) {
	be := backend.NewMemory()
	s, err := mvcc.Open(be)
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, benchValueBytes)
	req := &pb.PutRequest{Value: value}
	b.ReportAllocs()
	b.SetBytes(benchKeyBytes + benchValueBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBatchPuts {
		batch := be.Begin()
		w := s.Write(batch)
		for j := i; j < min(i+benchBatchPuts, b.N); j++ {
			req.Key = benchKey(j)
			if _, err := w.Put(req); err != nil {
				b.Fatal(err)
			}
		}
		w.SetConsistentIndex(uint64(i+1), 1)
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRange reads a store of 10,000 keys (8-byte keys, 256-byte
// values, each written twice so there is history).
func BenchmarkRange(b *testing.B) {
	const keys = 10_000
	be := backend.NewMemory()
	s, err := mvcc.Open(be)
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, benchValueBytes)
	for round := range 2 {
		for i := 0; i < keys; i += benchBatchPuts {
			batch := be.Begin()
			w := s.Write(batch)
			for j := i; j < i+benchBatchPuts; j++ {
				value[0] = byte(round)
				if _, err := w.Put(&pb.PutRequest{Key: benchKey(j), Value: value}); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	run := func(name string, req func(i int) *pb.RangeRequest, wantKvs int) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				resp, err := s.Range(req(i))
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.Kvs) != wantKvs {
					b.Fatalf("%d kvs; want %d", len(resp.Kvs), wantKvs)
				}
			}
		})
	}
	// A stride coprime with the key count visits keys in a scattered order.
	const stride = 7919
	run("key", func(i int) *pb.RangeRequest {
		return &pb.RangeRequest{Key: benchKey(i * stride % keys)}
	}, 1)
	run("key-at-old-revision", func(i int) *pb.RangeRequest {
		return &pb.RangeRequest{Key: benchKey(i * stride % keys), Revision: keys + 1}
	}, 1)
	run("100-keys", func(i int) *pb.RangeRequest {
		start := i * stride % (keys - 100)
		return &pb.RangeRequest{Key: benchKey(start), RangeEnd: benchKey(start + 100)}
	}, 100)
	run("100-keys-keys-only", func(i int) *pb.RangeRequest {
		start := i * stride % (keys - 100)
		return &pb.RangeRequest{Key: benchKey(start), RangeEnd: benchKey(start + 100), KeysOnly: true}
	}, 100)
	run("limit-10-of-all", func(int) *pb.RangeRequest {
		return &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Limit: 10}
	}, 10)
	run("count-all", func(int) *pb.RangeRequest {
		return &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, CountOnly: true}
	}, 0)
}

// BenchmarkWatch publishes puts to 1,000 watchers: one op is one put (8-byte
// keys, 256-byte values, 100 puts per committed batch, drained after each
// batch as a driver would); events/s counts the events handed out.
func BenchmarkWatch(b *testing.B) {
	const watchers = 1000
	for _, tc := range []struct {
		name  string
		watch func(i int) mvcc.WatchRequest
		key   func(i int) []byte
		per   int // events per put
	}{
		{"1000-on-the-key", func(int) mvcc.WatchRequest { return mvcc.WatchRequest{Key: benchKey(0)} },
			func(int) []byte { return benchKey(0) }, watchers},
		{"1000-on-a-prefix", func(int) mvcc.WatchRequest { return mvcc.WatchRequest{Key: []byte{0}, End: []byte{1}} },
			benchKey, watchers},
		{"1000-prev-kv", func(int) mvcc.WatchRequest { return mvcc.WatchRequest{Key: benchKey(0), PrevKV: true} },
			func(int) []byte { return benchKey(0) }, watchers},
		{"1000-distinct-keys", func(i int) mvcc.WatchRequest { return mvcc.WatchRequest{Key: benchKey(i)} },
			func(i int) []byte { return benchKey(i % watchers) }, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := backend.NewMemory()
			s, err := mvcc.Open(be)
			if err != nil {
				b.Fatal(err)
			}
			for i := range watchers {
				if _, err := s.Watch(tc.watch(i)); err != nil {
					b.Fatal(err)
				}
			}
			value := make([]byte, benchValueBytes)
			events := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += benchBatchPuts {
				batch := be.Begin()
				w := s.Write(batch)
				for j := i; j < min(i+benchBatchPuts, b.N); j++ {
					if _, err := w.Put(&pb.PutRequest{Key: tc.key(j), Value: value}); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Commit(); err != nil {
					b.Fatal(err)
				}
				s.Committed()
				for _, r := range s.WatchResponses() {
					events += len(r.Events)
				}
			}
			b.StopTimer()
			if events != b.N*tc.per {
				b.Fatalf("%d events; want %d", events, b.N*tc.per)
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
