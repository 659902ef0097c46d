package e2e_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestEtcdctlWatch: real etcdctl's `watch` against a plumb cluster: one
// from a past revision replays the history, then prints the writes made
// while it runs, in etcdctl's format (type, key, value: a delete's value
// is an empty line).
func TestEtcdctlWatch(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3)
	eps := c.endpoints()
	ctl(t, bin, eps, "put", "w/a", "1")
	ctl(t, bin, eps, "put", "w/b", "2")
	ctl(t, bin, eps, "del", "w/a")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// etcdctl watch blocks: it runs until the context kills it, and its
	// output is read as it comes.
	cmd := exec.CommandContext(ctx, bin, "--endpoints", strings.Join(eps, ","), "watch", "--prefix", "--rev", "1", "w/")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	read := func(n int) []string {
		t.Helper()
		var got []string
		for len(got) < n {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("etcdctl watch ended after %q", got)
				}
				got = append(got, l)
			case <-ctx.Done():
				t.Fatalf("etcdctl watch printed %q, want %d lines", got, n)
			}
		}
		return got
	}
	replay := []string{"PUT", "w/a", "1", "PUT", "w/b", "2", "DELETE", "w/a", ""}
	if got := read(len(replay)); strings.Join(got, "\n") != strings.Join(replay, "\n") {
		t.Fatalf("etcdctl watch --rev 1 replayed %q, want %q", got, replay)
	}
	ctl(t, bin, eps, "put", "w/c", "3")
	ctl(t, bin, eps, "put", "other", "x")
	ctl(t, bin, eps, "del", "w/b")
	live := []string{"PUT", "w/c", "3", "DELETE", "w/b", ""}
	if got := read(len(live)); strings.Join(got, "\n") != strings.Join(live, "\n") {
		t.Fatalf("etcdctl watch printed %q as the writes came, want %q", got, live)
	}
}

// TestEtcdctlWatchProgressNotify: `etcdctl watch --progress-notify` on an
// idle key gets plumb's periodic progress responses at
// --watch-progress-notify-interval, each at the cluster's revision.
func TestEtcdctlWatchProgressNotify(t *testing.T) {
	bin := etcdctl(t)
	c := newCluster(t, 3, "--watch-progress-notify-interval", "200ms")
	eps := c.endpoints()
	ctl(t, bin, eps, "put", "other", "x")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--endpoints", eps[0], "watch", "--progress-notify", "idle")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	start := time.Now()
	sc := bufio.NewScanner(stdout)
	var got []string
	for len(got) < 3 && sc.Scan() {
		got = append(got, sc.Text())
	}
	// The revision: the put of "other" is the cluster's second.
	want := []string{"progress notify: 2", "progress notify: 2", "progress notify: 2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("etcdctl watch --progress-notify printed %q, want %q", got, want)
	}
	// Three at 200ms (plus up to a tenth of jitter) come well within 2s; at
	// the default 10 minutes none would.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("three progress notifications took %v at a 200ms interval", took)
	}
}
