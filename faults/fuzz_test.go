package faults

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	f.Add([]byte("name: x\nduration: 1s\ncluster: {snapshot_count: 1}\n" +
		"faults: [{at: 0, kill: all}, {at: 0, disk: {member: n1, torn: true}}]\n"))
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
	if s.Name == "" || s.Duration <= 0 || s.Cluster.Members < 1 || s.Cluster.Members > maxMembers ||
		s.Cluster.SnapshotCount < 1 || s.Cluster.SnapshotCount > maxSnapshotCount ||
		s.Cluster.AutoCompactionRetention < 0 || s.Cluster.AutoCompactionRetention > maxRetention ||
		s.Cluster.AutoCompactionInterval < time.Millisecond || s.Watchers.Count < 0 || s.Watchers.Count > maxWatchers ||
		s.Watchers.ProgressEvery < 0 || s.Watchers.CancelEvery < 0 {
		t.Fatalf("invalid scenario accepted: %+v", s)
	}
	for i, f := range s.Faults {
		if f.Kind() == "" || f.At < 0 || f.At >= s.Duration {
			t.Fatalf("fault %d invalid: %+v", i, f)
		}
		checkTargets(t, i, f)
		if d := f.Disk; d != nil && !validDisk(d) {
			t.Fatalf("fault %d: invalid disk fault accepted: %+v", i, d)
		}
		if i > 0 && s.Faults[i-1].At > f.At {
			t.Fatalf("faults not sorted at %d", i)
		}
	}
	if s.LastFaultEnd() > s.Duration {
		t.Fatalf("LastFaultEnd %v after duration %v", s.LastFaultEnd(), s.Duration)
	}
}

// checkTargets checks that all is only ever a kill's target.
func checkTargets(t *testing.T, i int, f Fault) {
	var targets []Target
	if p := f.Partition; p != nil {
		if p.Isolate != nil {
			targets = append(targets, *p.Isolate)
		}
		for _, g := range p.Groups {
			targets = append(targets, g...)
		}
		if p.OneWay != nil {
			targets = append(append(targets, p.OneWay.From...), p.OneWay.To...)
		}
	}
	if f.Restart != nil {
		targets = append(targets, *f.Restart)
	}
	if f.ChangeIP != nil {
		targets = append(targets, f.ChangeIP.Target)
	}
	if f.Disk != nil {
		targets = append(targets, f.Disk.Target)
	}
	for _, target := range targets {
		if target.All {
			t.Fatalf("fault %d: all accepted as a %s target", i, f.Kind())
		}
	}
}

// validDisk reports whether d has exactly one effect, and a For only on
// an effect that lasts.
func validDisk(d *Disk) bool {
	effects := 0
	for _, set := range []bool{d.Latency != nil, d.Full, d.Corrupt != "", d.Torn} {
		if set {
			effects++
		}
	}
	lasts := d.Latency != nil || d.Full
	okFile := d.Corrupt == "" || d.Corrupt == CorruptWAL || d.Corrupt == CorruptSnapshot
	return effects == 1 && okFile && (lasts || d.For == 0)
}
