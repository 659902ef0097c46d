package wal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// testSegment builds a segment: a prologue batch, then batches of entry
// records with the given data sizes. It returns the bytes and where each
// batch starts.
func testSegment(t *testing.T, batches ...[]int) ([]byte, []int64) {
	t.Helper()
	var e encoder
	hdr := segmentHeader{seq: 0, index: 1}
	for pass := 0; pass < 2; pass++ {
		e.reset(0)
		e.add(recordSegment, hdr.encode())
		e.add(recordMetadata, testMeta)
		hdr.prologueBytes = int64(len(e.buf))
	}
	seg := append([]byte(nil), e.buf...)
	starts := []int64{0}
	for _, sizes := range batches {
		starts = append(starts, int64(len(seg)))
		e.reset(int64(len(seg)))
		for _, n := range sizes {
			e.add(recordEntry, bytes.Repeat([]byte{'d'}, n))
		}
		seg = append(seg, e.buf...)
	}
	return seg, starts
}

func TestRecordFraming(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		var e encoder
		e.reset(16)
		e.add(recordEntry, bytes.Repeat([]byte{'x'}, n))
		buf := append(make([]byte, 16), e.buf...)
		if len(buf)%recordAlignBytes != 0 {
			t.Fatalf("data of %d bytes: record of %d bytes is not aligned", n, len(e.buf))
		}
		rec, f, reason := readRecord(buf, 16)
		if f != faultNone || len(rec.data) != n || rec.typ != recordEntry || rec.batchOff != 16 || rec.end != int64(len(buf)) {
			t.Fatalf("data of %d bytes: %+v, fault %d %s", n, rec, f, reason)
		}
	}
}

func TestReadRecordFaults(t *testing.T) {
	var e encoder
	e.reset(0)
	e.add(recordEntry, []byte("hello, world")) // 12 bytes + 4 padding
	good := e.buf
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   fault
	}{
		{"good", func(b []byte) []byte { return b }, faultNone},
		{"short header", func(b []byte) []byte { return b[:10] }, faultShortHeader},
		{"short data", func(b []byte) []byte { return b[:30] }, faultShortData},
		{"length flipped", func(b []byte) []byte { b[1] ^= 4; return b }, faultHeader},
		{"type flipped", func(b []byte) []byte { b[4] ^= 1; return b }, faultHeader},
		{"batch offset flipped", func(b []byte) []byte { b[9] ^= 1; return b }, faultHeader},
		{"header crc flipped", func(b []byte) []byte { b[21] ^= 1; return b }, faultHeader},
		{"data crc flipped", func(b []byte) []byte { b[17] ^= 1; return b }, faultHeader}, // the header CRC covers it
		{"data flipped", func(b []byte) []byte { b[24] ^= 1; return b }, faultData},
		{"padding flipped", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, faultData},
		{"zeros", func(b []byte) []byte { return make([]byte, len(b)) }, faultHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f, reason := readRecord(tt.mutate(append([]byte(nil), good...)), 0)
			if f != tt.want {
				t.Fatalf("fault %d (%s), want %d", f, reason, tt.want)
			}
		})
	}
}

// TestScanSegment is the torn-or-corrupt decision on synthetic segments.
func TestScanSegment(t *testing.T) {
	seg, starts := testSegment(t, []int{10, 20}, []int{30, 5, 5})
	lastBatch := starts[2]
	tests := []struct {
		name     string
		buf      []byte
		last     bool
		wantTorn int64 // -1: not torn
		wantErr  int64 // offset of the CorruptError, -1: none
	}{
		{"clean", seg, true, -1, -1},
		{"clean, not last", seg, false, -1, -1},
		{"trailing zeros", append(seg, make([]byte, 100)...), true, int64(len(seg)), -1},
		{"trailing zeros, not last", append(seg, make([]byte, 100)...), false, -1, int64(len(seg))},
		{"cut in the last record", seg[:len(seg)-5], true, lastBatch + 2*24 + 32 + 8, -1},
		{"cut in a header", seg[:lastBatch+10], true, lastBatch, -1},
		{"cut in the last batch, not last", seg[:len(seg)-5], false, -1, lastBatch + 2*24 + 32 + 8},
		{"bad first record of the last batch, rest of it good", flip(seg, lastBatch+30), true, lastBatch, -1},
		{"zeroed start of the last batch, rest of it good", zero(seg, lastBatch, lastBatch+24+32), true, lastBatch, -1},
		{"bad record followed by a later batch", flip(seg, starts[1]+30), true, -1, starts[1]},
		{"bad header followed by a later batch", flip(seg, starts[1]+2), true, -1, starts[1]},
		{"bad prologue", flip(seg, 40), true, -1, 0},
		{"bad metadata record", flip(seg, starts[1]-3), true, -1, 80},
		{"empty", nil, true, -1, 0},
		{"prologue only, cut", seg[:60], true, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scanSegment("seg", tt.buf, tt.last)
			var ce *CorruptError
			switch {
			case tt.wantErr >= 0:
				if !errors.As(err, &ce) || ce.Offset != tt.wantErr || ce.File != "seg" {
					t.Fatalf("err %v, want a CorruptError at %d", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "etcdctl member remove/add") {
					t.Fatalf("the error does not say what to do: %v", err)
				}
			case err != nil:
				t.Fatalf("err %v", err)
			case tt.wantTorn >= 0 && (!s.torn || s.end != tt.wantTorn):
				t.Fatalf("torn %v at %d, want torn at %d", s.torn, s.end, tt.wantTorn)
			case tt.wantTorn < 0 && (s.torn || s.end != int64(len(tt.buf))):
				t.Fatalf("torn %v at %d, want whole", s.torn, s.end)
			}
		})
	}
}

func flip(b []byte, off int64) []byte {
	b = append([]byte(nil), b...)
	b[off] ^= 0x10
	return b
}

func zero(b []byte, from, to int64) []byte {
	b = append([]byte(nil), b...)
	clear(b[from:to])
	return b
}
