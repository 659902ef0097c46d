package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchShell prints a watch command's variables, as a user's script reads them.
const watchShell = `echo "$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"`

func TestWatchMatchesEtcdctl(t *testing.T) {
	ref := startEtcd(t)
	clearEtcdctlEnv(t)
	t.Run("compacted", func(t *testing.T) {
		// A watch from a compacted revision is canceled at once: the one
		// way a watch ends without a signal.
		ref.write(t, "zc/a", "1")
		ref.compact(t, ref.write(t, "zc/a", "2"))
		ref.compare(t, []ctlCase{
			{args: []string{"watch", "zc/a", "--rev", "1"}},
			{args: []string{"watch", "zc/", "--prefix", "--rev", "1", "-w", "json"}},
		})
	})
	t.Run("events", func(t *testing.T) { testWatchEvents(t, ref) })
	t.Run("command fails", func(t *testing.T) {
		from := fmt.Sprint(ref.write(t, "zf/other", "x") + 1)
		e, p := ref.startBoth(t, ctlCase{args: []string{"watch", "zf/a", "--rev", from, "--", "sh", "-c", "echo ran; exit 4"}})
		ref.write(t, "zf/a", "1")
		sameOutcome(t, p.name, p.wait(t), e.wait(t), nil)
	})
	t.Run("interactive", func(t *testing.T) { testWatchInteractive(t, ref) })
	t.Run("progress-notify", func(t *testing.T) {
		e, p := ref.startBoth(t, ctlCase{args: []string{"watch", "zp/quiet", "--progress-notify"}})
		var first []string
		for _, proc := range []*ctlProc{e, p} {
			proc.waitContains(t, "\n")
			first = append(first, strings.SplitAfter(proc.stop(t).stdout, "\n")[0])
		}
		if !strings.HasPrefix(first[0], "progress notify: ") || first[1] != first[0] {
			t.Errorf("first lines of watch --progress-notify: plumb %q, etcdctl %q", first[1], first[0])
		}
	})
}

// write puts a key and returns the revision it made.
func (r *refServer) write(t *testing.T, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.client.Put(ctx, key, value)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func (r *refServer) compact(t *testing.T, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.client.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// testWatchEvents runs watches of each kind side by side with etcdctl's
// while the test writes, and compares everything each printed. Every
// watch starts from the revision after the test's first write, so that it
// sees every write however late it starts; each must have printed the
// first write before the others are made, so that each write comes in a
// response of its own (the JSON format prints one line a response). The
// last write, "fin", says a watch has seen everything.
func testWatchEvents(t *testing.T, ref *refServer) {
	from := fmt.Sprint(ref.write(t, "zw/start", "") + 1)
	fin := map[string]string{"simple": "\nfin\n", "json": `"Zmlu"`, "hex": `\x66\x69\x6e`, "command": `"zw/a" "fin"`}
	kinds := []struct {
		fin  string
		args []string
		env  []string
	}{
		{fin["simple"], []string{"watch", "zw/", "--prefix", "--prev-kv"}, nil},
		{fin["json"], []string{"watch", "zw/a", "zw/c", "-w", "json"}, nil},
		{fin["hex"], []string{"watch", "--prefix", "zw/", "--hex", "--prev-kv"}, nil},
		{fin["command"], []string{"watch", "zw/a", "--prev-kv", "--", "sh", "-c", watchShell}, nil},
		{fin["command"], []string{"watch", "--", "sh", "-c", watchShell}, []string{"ETCDCTL_WATCH_KEY=zw/a", "ETCDCTL_WATCH_RANGE_END=zw/z"}},
	}
	var pairs [][2]*ctlProc
	for _, k := range kinds {
		args := slices.Clone(k.args)
		at := len(args) // --rev goes before a command
		if i := slices.Index(args, "--"); i >= 0 {
			at = i
		}
		e, p := ref.startBoth(t, ctlCase{args: slices.Insert(args, at, "--rev", from)}, k.env...)
		pairs = append(pairs, [2]*ctlProc{e, p})
	}
	ref.write(t, "zw/a", "0")
	for _, pair := range pairs {
		pair[0].waitLines(t, 1)
		pair[1].waitLines(t, 1)
	}
	ref.write(t, "zw/b", "x y")
	ref.write(t, "zw/a", "1")
	ref.write(t, "zw/c", "\x00\xff")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ref.client.Delete(ctx, "zw/a"); err != nil {
		t.Fatal(err)
	}
	ref.write(t, "zw/d", "outside zw/a..zw/c")
	// Three events in one response: the command runs for each.
	if _, err := ref.client.Delete(ctx, "zw/b", clientv3.WithRange("zw/e")); err != nil {
		t.Fatal(err)
	}
	ref.write(t, "zw/a", "fin")
	// A watch from the past replays it all in one response.
	e, p := ref.startBoth(t, ctlCase{args: []string{"watch", "zw/", "--prefix", "--prev-kv", "-w", "json", "--rev", from}})
	pairs = append(pairs, [2]*ctlProc{e, p})
	kinds = append(kinds, kinds[1])
	for i, pair := range pairs {
		pair[0].waitContains(t, kinds[i].fin)
		pair[1].waitContains(t, kinds[i].fin)
		sameOutcome(t, pair[1].name, pair[1].stop(t), pair[0].stop(t), nil)
	}
}

// testWatchInteractive feeds `watch -i` lines, good and bad, side by side
// with etcdctl, and compares all each printed once stdin ends (which ends
// both, with exit 3).
func testWatchInteractive(t *testing.T, ref *refServer) {
	from := fmt.Sprint(ref.write(t, "zi/start", "") + 1)
	e, p := ref.startBoth(t, ctlCase{args: []string{"watch", "-i"}})
	both := []*ctlProc{e, p}
	send := func(lines ...string) {
		t.Helper()
		for _, proc := range both {
			if _, err := io.WriteString(proc.stdin, strings.Join(lines, "\n")+"\n"); err != nil {
				t.Fatalf("%s: %v", proc.name, err)
			}
		}
	}
	wait := func(s string) {
		t.Helper()
		for _, proc := range both {
			proc.waitContains(t, s)
		}
	}
	send("watch zi/a --prev-kv --rev "+from, "", "foo", "watch", "watch zi/a zi/b --prefix", "watch -- echo no key")
	ref.write(t, "zi/a", "0")
	wait("zi/a\n0\n")
	send("progress")
	wait("progress notify: ")
	send(`watch "zi/b" --rev ` + from + ` -- sh -c 'echo "$ETCD_WATCH_KEY=$ETCD_WATCH_VALUE"'`)
	ref.write(t, "zi/b", "two words")
	wait(`"zi/b"="two words"`)
	for _, proc := range both {
		proc.stdin.Close()
	}
	sameOutcome(t, p.name, p.wait(t), e.wait(t), nil)
}
