package bolt

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The crash tests run the test binary again as a child (TestCrashHelper)
// that writes to a database and dies without closing it; the parent then
// reopens the file. A process crash keeps the page cache, so this checks that
// bbolt has written and ordered everything by the time Commit returns, and
// that nothing uncommitted reaches the file; it cannot check the fsyncs
// against a power cut.

const (
	crashEnvPath = "PLUMB_BOLT_CRASH_PATH"
	crashEnvMode = "PLUMB_BOLT_CRASH_MODE"
	// crashBatches is how many batches the exiting child commits.
	crashBatches = 50
	// crashKeysPerBatch is the puts in each of the child's batches.
	crashKeysPerBatch = 20
)

var crashBucket = []byte("key")

func crashKey(batch, i int) []byte   { return fmt.Appendf(nil, "%06d-%03d", batch, i) }
func crashValue(batch, i int) []byte { return fmt.Appendf(nil, "value %d.%d %0200d", batch, i, batch) }

// TestCrashHelper is the child process; it does nothing in a normal run.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnvPath)
	if path == "" {
		t.Skip("the child process of TestCrashExit and TestCrashKill")
	}
	be, err := Open(path, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	commit := func(n int) {
		b := be.Begin()
		for i := range crashKeysPerBatch {
			b.Put(crashBucket, crashKey(n, i), crashValue(n, i))
		}
		if n > 0 { // overwrite and delete some of the previous batch too
			b.Put(crashBucket, crashKey(n-1, 0), crashValue(n, 0))
			b.Delete(crashBucket, crashKey(n-1, 1))
		}
		if err := b.Commit(); err != nil {
			fmt.Println("commit:", err)
			os.Exit(2)
		}
		// Printed only once Commit has returned: the parent may rely on it.
		fmt.Println("committed", n)
	}
	switch os.Getenv(crashEnvMode) {
	case "exit":
		for n := range crashBatches {
			commit(n)
		}
		// A large batch that never commits, then exit without Close.
		b := be.Begin()
		for i := range 5000 {
			b.Put(crashBucket, fmt.Appendf(nil, "uncommitted-%06d", i), make([]byte, 300))
		}
		b.Delete(crashBucket, crashKey(0, 0))
		os.Exit(0)
	case "loop":
		for n := 0; ; n++ { // until the parent kills it
			commit(n)
		}
	}
	os.Exit(3)
}

// runCrashChild starts the child in mode and returns it with its stdout.
func runCrashChild(t *testing.T, path, mode string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvPath+"="+path, crashEnvMode+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// lastCommitted reads the child's "committed N" lines up to limit of them
// (0: all) and returns the last N, or -1.
func lastCommitted(t *testing.T, sc *bufio.Scanner, limit int) int {
	t.Helper()
	last, lines := -1, 0
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "committed "))
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		if n != last+1 {
			t.Fatalf("child committed %d after %d", n, last)
		}
		last = n
		if lines++; lines == limit {
			break
		}
	}
	return last
}

// checkCrashState reopens path and checks that batches 0..last are there,
// nothing uncommitted is, and Size agrees with a scan.
func checkCrashState(t *testing.T, path string, last int) {
	t.Helper()
	be := mustOpen(t, path, Options{})
	defer func() { _ = be.Close() }()
	present := func(n int) bool { _, ok := be.Get(crashBucket, crashKey(n, 2)); return ok }
	if !present(last) {
		t.Fatalf("batch %d, which the child reported committed, is missing", last)
	}
	// A killed child may have committed batches it did not report, or whose
	// report the parent did not read; they must follow on without a gap,
	// which the comparison below checks.
	top := last
	for present(top + 1) {
		top++
	}
	want := map[string]string{}
	for n := 0; n <= top; n++ {
		for i := range crashKeysPerBatch {
			want[string(crashKey(n, i))] = string(crashValue(n, i))
		}
		if n > 0 {
			want[string(crashKey(n-1, 0))] = string(crashValue(n, 0))
			delete(want, string(crashKey(n-1, 1)))
		}
	}
	got, size := 0, int64(0)
	err := be.ForEach(crashBucket, func(k, v []byte) error {
		if w, ok := want[string(k)]; !ok || w != string(v) {
			return fmt.Errorf("key %q = %.40q; want %.40q (present %v)", k, v, w, ok)
		}
		got++
		size += int64(len(k) + len(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Fatalf("%d keys after the crash; want %d (batches 0..%d)", got, len(want), top)
	}
	if be.Size() != size {
		t.Fatalf("Size = %d after the crash; the keys hold %d", be.Size(), size)
	}
	t.Logf("batches 0..%d (the child reported %d): %d keys, %d bytes", top, last, got, size)
}

// TestCrashExit: the child commits, opens a large batch and exits without
// closing: every committed batch is there, the open one is not.
func TestCrashExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	cmd, sc := runCrashChild(t, path, "exit")
	last := lastCommitted(t, sc, 0)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if last != crashBatches-1 {
		t.Fatalf("child committed up to %d; want %d", last, crashBatches-1)
	}
	checkCrashState(t, path, last)
	if _, ok := mustGet(t, path, fmt.Sprintf("uncommitted-%06d", 0)); ok {
		t.Fatal("a key of the uncommitted batch survived")
	}
}

func mustGet(t *testing.T, path, key string) ([]byte, bool) {
	t.Helper()
	be := mustOpen(t, path, Options{})
	defer func() { _ = be.Close() }()
	v, ok := be.Get(crashBucket, []byte(key))
	return append([]byte(nil), v...), ok
}

// TestCrashKill kills the child (SIGKILL) at arbitrary points while it
// commits in a loop, including inside a Commit, several times over the same
// file: every batch it reported is there each time.
func TestCrashKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	for round := range 3 {
		if round > 0 {
			_ = os.Remove(path) // each round starts over: the child numbers batches from 0
		}
		cmd, sc := runCrashChild(t, path, "loop")
		last := lastCommitted(t, sc, 30+round*37)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed: the error is expected
		if last < 0 {
			t.Fatal("child committed nothing")
		}
		checkCrashState(t, path, last)
	}
}
