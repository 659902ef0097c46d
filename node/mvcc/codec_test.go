package mvcc

import (
	"bytes"
	"math"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func TestKVCodecMatchesProto(t *testing.T) {
	kvs := []*mvccpb.KeyValue{
		{},
		{Key: []byte("k")},
		{Key: []byte("foo"), Value: []byte("bar"), CreateRevision: 2, ModRevision: 3, Version: 2, Lease: 7},
		{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 300), CreateRevision: math.MaxInt64, ModRevision: 1 << 40, Version: 1, Lease: -1},
		{Key: bytes.Repeat([]byte{0, 0xff}, 200), Lease: math.MinInt64},
	}
	for _, kv := range kvs {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(kv)
		if err != nil {
			t.Fatal(err)
		}
		got := appendKV(nil, kv)
		if !bytes.Equal(got, want) {
			t.Errorf("appendKV(%v) = %x; proto.Marshal gives %x", kv, got, want)
		}
		if n := marshalledKVSize(kv.Key, kv.Value); len(got) > n {
			t.Errorf("marshalledKVSize = %d < %d", n, len(got))
		}
		dec, err := decodeKV(got, false)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(dec, kv) {
			t.Errorf("decodeKV round trip = %v; want %v", dec, kv)
		}
		keysOnly, err := decodeKV(got, true)
		if err != nil {
			t.Fatal(err)
		}
		if keysOnly.Value != nil || !bytes.Equal(keysOnly.Key, kv.Key) || keysOnly.ModRevision != kv.ModRevision {
			t.Errorf("decodeKV keys only = %v", keysOnly)
		}
	}
}

func TestDecodeKVCopiesAndSkipsUnknown(t *testing.T) {
	kv := &mvccpb.KeyValue{Key: []byte("key"), Value: []byte("value"), Version: 1}
	b := appendKV(nil, kv)
	b = append(b, 0x78, 0x05) // field 15, varint 5: unknown, skipped
	dec, err := decodeKV(b, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(dec.Key) != "key" || string(dec.Value) != "value" || dec.Version != 1 {
		t.Fatalf("decoded KeyValue aliases its input or lost fields: %v", dec)
	}
	if _, err := decodeKV([]byte{0x0a, 0x05, 'a'}, false); err == nil {
		t.Fatal("truncated input decoded without error")
	}
}

func TestRevKey(t *testing.T) {
	for _, tc := range []struct {
		rev  revision
		tomb bool
	}{{revision{1, 0}, false}, {revision{2, 5}, true}, {revision{math.MaxInt64, math.MaxInt64}, false}} {
		k := revKey(tc.rev, tc.tomb)
		r, tomb, err := parseRevKey(k)
		if err != nil || r != tc.rev || tomb != tc.tomb {
			t.Errorf("parseRevKey(revKey(%v, %v)) = %v, %v, %v", tc.rev, tc.tomb, r, tomb, err)
		}
	}
	// etcd's layout, byte for byte.
	if got := revKey(revision{main: 2, sub: 1}, true); !bytes.Equal(got, []byte("\x00\x00\x00\x00\x00\x00\x00\x02_\x00\x00\x00\x00\x00\x00\x00\x01t")) {
		t.Errorf("revKey = %q", got)
	}
	// Byte order is revision order.
	if bytes.Compare(revKey(revision{1, 9}, false), revKey(revision{2, 0}, false)) >= 0 {
		t.Error("revision keys do not sort by revision")
	}
	for _, bad := range [][]byte{nil, []byte("short"), bytes.Repeat([]byte{1}, revKeyLen), append(revKey(revision{1, 1}, false), 'x')} {
		if _, _, err := parseRevKey(bad); err == nil {
			t.Errorf("parseRevKey(%q) succeeded", bad)
		}
	}
}
