package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestFrameRoundTrip: frames written one after another come back one
// after another, and the stream's clean end is io.EOF.
func TestFrameRoundTrip(t *testing.T) {
	in := []frame{
		{ClusterID: 1 << 60, From: 2, To: 3, DataBytes: 4, Body: []byte("body")},
		{ClusterID: 1, From: 3, To: 2},
		{ClusterID: 1, From: 3, To: 2, Body: bytes.Repeat([]byte{7}, 3*frameReadStepBytes+5)},
	}
	var wire []byte
	for i := range in {
		wire = appendFrame(wire, &in[i])
	}
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(wire))}
	for i, want := range in {
		var got frame
		if err := fr.next(&got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.ClusterID != want.ClusterID || got.From != want.From || got.To != want.To || got.DataBytes != want.DataBytes ||
			!bytes.Equal(got.Body, want.Body) {
			t.Fatalf("frame %d: got %+v, want %+v", i, got, want)
		}
	}
	if err := fr.next(&frame{}); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// TestFrameReaderRefuses: a truncated header, a frame cut off, and a
// length over maxPeerFrameBytes are errors, not frames; a length is only
// a claim, so the buffer grows with the bytes that arrive.
func TestFrameReaderRefuses(t *testing.T) {
	whole := appendFrame(nil, &frame{ClusterID: 1, From: 2, To: 3, Body: []byte("body")})
	for _, tc := range []struct {
		name string
		wire []byte
		want string
	}{
		{"a truncated header", append(binary.AppendUvarint(nil, 2), 0x80, 0x80), "truncated header"},
		{"a frame cut off", whole[:len(whole)-2], "cut off"},
		{"a length cut off", []byte{0x80}, "reading its length"},
		{"a length over the limit", binary.AppendUvarint(nil, maxPeerFrameBytes+1), "over the limit"},
	} {
		fr := frameReader{r: bufio.NewReader(bytes.NewReader(tc.wire))}
		err := fr.next(&frame{})
		if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}

	claim := append(binary.AppendUvarint(nil, maxPeerFrameBytes), make([]byte, 100)...)
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(claim))}
	if err := fr.next(&frame{}); err == nil {
		t.Fatal("a frame of 100 bytes claiming maxPeerFrameBytes decoded")
	}
	if cap(fr.buf) > frameReadStepBytes {
		t.Errorf("100 bytes of a frame claiming %d took a buffer of %d, want at most %d", maxPeerFrameBytes, cap(fr.buf), frameReadStepBytes)
	}
}
