package mvcc

import (
	"fmt"
	"testing"
)

// example builds etcd's documented keyIndex: put(1.0); put(2.0);
// tombstone(3.0); put(4.0); tombstone(5.0).
func example(t *testing.T) *keyIndex {
	t.Helper()
	ki := &keyIndex{key: []byte("foo")}
	ki.put(1, 0)
	ki.put(2, 0)
	if err := ki.tombstone(3, 0); err != nil {
		t.Fatal(err)
	}
	ki.put(4, 0)
	if err := ki.tombstone(5, 0); err != nil {
		t.Fatal(err)
	}
	return ki
}

func gens(ki *keyIndex) string {
	s := ""
	for _, g := range ki.generations {
		s += "{"
		for i, r := range g.revs {
			if i > 0 {
				s += " "
			}
			s += fmt.Sprintf("%d.%d", r.main, r.sub)
		}
		s += "}"
	}
	return s
}

func TestKeyIndexGet(t *testing.T) {
	ki := example(t)
	tests := []struct {
		atRev             int64
		ok                bool
		mod, created, ver int64
	}{
		{0, false, 0, 0, 0},
		{1, true, 1, 1, 1},
		{2, true, 2, 1, 2},
		{3, false, 0, 0, 0}, // deleted at 3
		{4, true, 4, 4, 1},  // a new generation: version restarts
		{5, false, 0, 0, 0},
		{100, false, 0, 0, 0},
	}
	for _, tt := range tests {
		mod, created, ver, ok := ki.get(tt.atRev)
		if ok != tt.ok || mod.main != tt.mod || created.main != tt.created || ver != tt.ver {
			t.Errorf("get(%d) = %v %v %d %v; want mod %d created %d ver %d %v",
				tt.atRev, mod, created, ver, ok, tt.mod, tt.created, tt.ver, tt.ok)
		}
	}
	if err := ki.tombstone(6, 0); err != errRevisionNotFound {
		t.Errorf("tombstone of a deleted key = %v; want errRevisionNotFound", err)
	}
}

// TestKeyIndexCompact checks etcd's documented compactions, and what each
// keeps.
func TestKeyIndexCompact(t *testing.T) {
	tests := []struct {
		atRev int64
		gens  string
		kept  string
		empty bool
	}{
		{1, "{1.0 2.0 3.0}{4.0 5.0}{}", "[1.0]", false},
		{2, "{2.0 3.0}{4.0 5.0}{}", "[2.0]", false},
		{3, "{3.0}{4.0 5.0}{}", "[3.0]", false}, // the tombstone at 3 stays
		{4, "{4.0 5.0}{}", "[4.0]", false},
		{5, "{5.0}{}", "[5.0]", false},
		{6, "{}", "[]", true},
	}
	for _, tt := range tests {
		ki := example(t)
		available := map[revision]struct{}{}
		ki.compact(tt.atRev, available)
		var kept []string
		for r := range available {
			kept = append(kept, fmt.Sprintf("%d.%d", r.main, r.sub))
		}
		if g := gens(ki); g != tt.gens || fmt.Sprint(kept) != tt.kept || ki.isEmpty() != tt.empty {
			t.Errorf("compact(%d): generations %s, kept %v, empty %v; want %s, %s, %v",
				tt.atRev, g, kept, ki.isEmpty(), tt.gens, tt.kept, tt.empty)
		}
	}
}

// TestKeyIndexKeepSkipsTombstones: the hash's keep set is compaction's
// without tombstones.
func TestKeyIndexKeepSkipsTombstones(t *testing.T) {
	for atRev, want := range map[int64]int{1: 1, 2: 1, 3: 0, 4: 1, 5: 0, 6: 0} {
		ki := example(t)
		available := map[revision]struct{}{}
		ki.keep(atRev, available)
		if len(available) != want {
			t.Errorf("keep(%d) kept %v; want %d revisions", atRev, available, want)
		}
		if g := gens(ki); g != "{1.0 2.0 3.0}{4.0 5.0}{}" {
			t.Errorf("keep(%d) changed the keyIndex: %s", atRev, g)
		}
	}
}

func TestKeyIndexPutPanicsOnOldRevision(t *testing.T) {
	ki := example(t)
	defer func() {
		if recover() == nil {
			t.Error("put at an old revision did not panic")
		}
	}()
	ki.put(5, 0)
}

func TestKeyIndexUnput(t *testing.T) {
	ki := example(t)
	ki.put(6, 0)
	ki.put(6, 1)
	ki.unput(revision{6, 0})
	ki.unput(revision{5, 0})
	if g := gens(ki); g != "{1.0 2.0 3.0}{4.0 5.0}{}" || ki.modified != (revision{5, 0}) {
		t.Errorf("after unput: %s modified %v", g, ki.modified)
	}
	if _, _, _, ok := ki.get(6); ok {
		t.Error("undone put still visible")
	}
}
