package node

import "testing"

// TestPermissionSpans: etcd's range permission rules: a key needs one
// permission that holds it; a range needs the union of the user's
// permissions to cover all of it, with "\x00" as the end of the keyspace.
func TestPermissionSpans(t *testing.T) {
	spans := []span{
		{begin: []byte("a"), end: []byte("c")},
		{begin: []byte("b"), end: []byte("d")},
		{begin: []byte("f"), end: nil},
		{begin: []byte("k1"), end: []byte("k1\x00")}, // one key
	}
	in := func(k string) bool { return containsKey(spans, []byte(k)) }
	cov := func(b, e string) bool { return covers(spans, []byte(b), openEnd([]byte(e))) }
	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"key a", in("a"), true},
		{"key cz (second span)", in("cz"), true},
		{"key d (end is open)", in("d"), false},
		{"key e", in("e"), false},
		{"key zzz (open span)", in("zzz"), true},
		{"[a, d) across two overlapping spans", cov("a", "d"), true},
		{"[a, e) has a gap at [d, e)", cov("a", "e"), false},
		{"[f, end of keyspace)", cov("f", "\x00"), true},
		{"[b, end of keyspace) has a gap", cov("b", "\x00"), false},
		{"[0, b) starts before any span", cov("0", "b"), false},
		{"inverted range", cov("c", "a"), false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
