package faults

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every failure is an *Error
// on one line with a line number inside the file, and that a success obeys
// the limits a simulator relies on.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\nduration: 1s\nfaults: [{at: 0, partition: {groups: [[leader], [follower]]}}]\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err != nil {
			checkError(t, data, err)
			return
		}
		checkScenario(t, s)
	})
}

func checkError(t *testing.T, data []byte, err error) {
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is a %T, want *Error", err, err)
	}
	lines := 1 + lineBreaks(data)
	if e.Line < 1 || e.Line > lines || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q: line %d outside 1..%d, or more than one line", err, e.Line, lines)
	}
}

func checkScenario(t *testing.T, s *Scenario) {
	if s.Name == "" || s.Duration <= 0 || s.Cluster.Members < 1 || s.Cluster.Members > maxMembers {
		t.Fatalf("invalid scenario accepted: %+v", s)
	}
	for i, f := range s.Faults {
		if f.Kind() == "" || f.At < 0 || f.At >= s.Duration {
			t.Fatalf("fault %d invalid: %+v", i, f)
		}
		if i > 0 && s.Faults[i-1].At > f.At {
			t.Fatalf("faults not sorted at %d", i)
		}
	}
	if s.LastFaultEnd() > s.Duration {
		t.Fatalf("LastFaultEnd %v after duration %v", s.LastFaultEnd(), s.Duration)
	}
}
