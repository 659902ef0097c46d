package main

// The commands that run until something happens (watch, lease keep-alive,
// lock, elect) are compared as processes: etcdctl, and this test binary
// run as plumb (TestMain), side by side against the same server, so that
// the test can write while they run, feed their stdin, read their output
// as it comes and interrupt them with a signal, as a user would.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// asPlumbEnv set to 1 makes this test binary run plumb instead of the tests.
const asPlumbEnv = "PLUMB_TEST_RUN_AS_PLUMB"

// procWaitMax bounds every wait for a process's output or exit.
const procWaitMax = 20 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(asPlumbEnv) == "1" {
		// Unset, so that commands run by watch and lock do not see it.
		os.Unsetenv(asPlumbEnv)
		os.Exit(run(os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// lockedBuffer is a process's output, written by exec's copying goroutine
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ctlProc is one running etcdctl or plumb.
type ctlProc struct {
	name           string // "etcdctl" or "plumb", and the arguments
	isEtcdctl      bool
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr lockedBuffer
	exited         chan struct{}
}

// startCtl starts etcdctl (isEtcdctl) or plumb with the case's arguments
// against r, with env added to the test's environment. The process is
// killed, if it still runs, when the test ends.
func (r *refServer) startCtl(t *testing.T, isEtcdctl bool, tc ctlCase, env ...string) *ctlProc {
	t.Helper()
	p := &ctlProc{isEtcdctl: isEtcdctl, exited: make(chan struct{})}
	if isEtcdctl {
		args := tc.args
		if !tc.own {
			args = append([]string{"--endpoints", r.endpoint}, args...)
		}
		p.name = "etcdctl " + strings.Join(args, " ")
		p.cmd = exec.Command(r.etcdctl, args...)
		p.cmd.Env = append(os.Environ(), env...)
	} else {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		args := r.plumbArgs(tc)
		p.name = "plumb " + strings.Join(args, " ")
		p.cmd = exec.Command(self, args...)
		p.cmd.Env = append(os.Environ(), append(env, asPlumbEnv+"=1")...)
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	go func() {
		_ = p.cmd.Wait() // the exit status is read from ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// startBoth starts etcdctl and plumb on the same case.
func (r *refServer) startBoth(t *testing.T, tc ctlCase, env ...string) (etcdctl, plumb *ctlProc) {
	t.Helper()
	return r.startCtl(t, true, tc, env...), r.startCtl(t, false, tc, env...)
}

// waitOutput waits until the process's stdout satisfies done.
func (p *ctlProc) waitOutput(t *testing.T, what string, done func(stdout string) bool) {
	t.Helper()
	for deadline := time.Now().Add(procWaitMax); !done(p.stdout.String()); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.exited:
			if done(p.stdout.String()) {
				return
			}
			t.Fatalf("%s exited (%v) before %s; stdout:\n%s\nstderr:\n%s", p.name, p.cmd.ProcessState, what, p.stdout.String(), p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s after %v; stdout:\n%s\nstderr:\n%s", p.name, what, procWaitMax, p.stdout.String(), p.stderr.String())
		}
	}
}

// waitLines waits until the process printed n lines or more.
func (p *ctlProc) waitLines(t *testing.T, n int) {
	t.Helper()
	p.waitOutput(t, "output", func(out string) bool { return strings.Count(out, "\n") >= n })
}

// waitContains waits until the process printed s.
func (p *ctlProc) waitContains(t *testing.T, s string) {
	t.Helper()
	p.waitOutput(t, strings.TrimSpace(s), func(out string) bool { return strings.Contains(out, s) })
}

// running says whether the process has not exited.
func (p *ctlProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *ctlProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// wait waits for the process to exit and returns what it did: its exit
// code is -1 when a signal killed it.
func (p *ctlProc) wait(t *testing.T) outcome {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(procWaitMax):
		t.Fatalf("%s still runs after %v; stdout:\n%s\nstderr:\n%s", p.name, procWaitMax, p.stdout.String(), p.stderr.String())
	}
	out := outcome{code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String()}
	if p.isEtcdctl {
		out.stderr = withoutLogs(out.stderr)
	}
	return out
}

// stop interrupts the process, as Ctrl-C does, and waits for it.
func (p *ctlProc) stop(t *testing.T) outcome {
	t.Helper()
	p.signal(t, syscall.SIGINT)
	return p.wait(t)
}

// sameOutcome reports a difference between plumb's outcome and etcdctl's,
// each passed through mask first.
func sameOutcome(t *testing.T, what string, plumb, etcdctl outcome, mask func(string) string) {
	t.Helper()
	if mask == nil {
		mask = func(s string) string { return s }
	}
	if plumb.code != etcdctl.code || mask(plumb.stdout) != mask(etcdctl.stdout) || mask(plumb.stderr) != mask(etcdctl.stderr) {
		t.Errorf("%s:\nplumb   exit %d, stdout:\n%s\nstderr:\n%s\netcdctl exit %d, stdout:\n%s\nstderr:\n%s",
			what, plumb.code, plumb.stdout, plumb.stderr, etcdctl.code, etcdctl.stdout, etcdctl.stderr)
	}
}

// compareProcesses runs each case through etcdctl and plumb as processes,
// one after the other, and compares what they did once they exit: for the
// cases whose outcome a process shows and run does not (an exit status
// of 255, a child's output on the process's own stdout).
func (r *refServer) compareProcesses(t *testing.T, cases []ctlCase) {
	t.Helper()
	for _, tc := range cases {
		var outs []outcome
		for _, isEtcdctl := range []bool{true, false} {
			if tc.reset != nil {
				r.resetZZ(t, tc.reset)
			}
			p := r.startCtl(t, isEtcdctl, r.forSide(t, tc))
			_, _ = io.WriteString(p.stdin, tc.stdin)
			p.stdin.Close()
			outs = append(outs, p.wait(t))
		}
		mask := func(s string) string {
			s = comparable(s, tc.revisions)
			if tc.ids {
				s = withoutLeaseIDs(s)
			}
			return s
		}
		sameOutcome(t, strings.Join(tc.args, " "), outs[1], outs[0], mask)
	}
}
