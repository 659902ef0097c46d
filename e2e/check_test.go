package e2e_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCheckPerfAndDatascale: etcdctl check perf (60 s of puts with a
// lease from 50 clients, then its deletes, compaction and defragment) and
// check datascale (10000 puts of 1 KiB, the member's memory read from
// /metrics' process_resident_memory_bytes) pass against a 3-member plumb
// cluster at their smallest load, with their --auto-compact and
// --auto-defrag. go test -short skips it (it takes over a minute).
func TestCheckPerfAndDatascale(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: etcdctl check perf takes a minute")
	}
	bin := etcdctl(t)
	c := newCluster(t, 3)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--endpoints", strings.Join(c.endpoints(), ",")}, args...)...)
		out, err := cmd.CombinedOutput()
		// Keep the verdict lines, not the progress bar.
		var lines []string
		for _, l := range strings.Split(strings.ReplaceAll(string(out), "\r", "\n"), "\n") {
			if i := strings.Index(l, "PASS"); i >= 0 {
				lines = append(lines, l[i:])
			} else if i := strings.Index(l, "FAIL"); i >= 0 {
				lines = append(lines, l[i:])
			} else if strings.Contains(l, "Error") || strings.Contains(l, "error") {
				lines = append(lines, l)
			}
		}
		verdict := strings.Join(lines, "\n")
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, verdict)
		}
		return verdict
	}
	out := run("check", "datascale", "--load", "s", "--auto-compact", "--auto-defrag")
	if !strings.Contains(out, "PASS: Approximate system memory used") {
		t.Fatalf("etcdctl check datascale:\n%s", out)
	}
	out = run("check", "perf", "--load", "s", "--auto-compact", "--auto-defrag")
	for _, want := range []string{"PASS: Throughput is", "PASS: Slowest request took", "PASS: Stddev is"} {
		if !strings.Contains(out, want) {
			t.Fatalf("etcdctl check perf:\n%s\nwant %q", out, want)
		}
	}
	t.Logf("etcdctl check perf:\n%s", out)
}
