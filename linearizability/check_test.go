package linearizability

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Helpers that read like the histories they build. Times are [call, ret].

func put(client int, key, value string, call, ret int64) Operation {
	return Operation{Client: client, Kind: KindPut, Key: key, Value: value, Call: call, Return: ret, Outcome: OutcomeOK}
}

func get(client int, key string, call, ret int64, value string) Operation {
	return Operation{Client: client, Kind: KindGet, Key: key, Call: call, Return: ret, Outcome: OutcomeOK, Found: true, Result: value}
}

func getAbsent(client int, key string, call, ret int64) Operation {
	return Operation{Client: client, Kind: KindGet, Key: key, Call: call, Return: ret, Outcome: OutcomeOK}
}

func del(client int, key string, call, ret int64, deleted int64) Operation {
	return Operation{Client: client, Kind: KindDelete, Key: key, Call: call, Return: ret, Outcome: OutcomeOK, Deleted: deleted}
}

func cas(client int, key, expect, value string, call, ret int64, succeeded bool) Operation {
	return Operation{Client: client, Kind: KindCAS, Key: key, Expect: expect, Value: value, Call: call, Return: ret, Outcome: OutcomeOK, Succeeded: succeeded}
}

func casAbsent(client int, key, value string, call, ret int64, succeeded bool) Operation {
	op := cas(client, key, "", value, call, ret, succeeded)
	op.ExpectAbsent = true
	return op
}

// unknown turns op into one whose outcome the client never learned.
func unknown(op Operation) Operation {
	op.Outcome = OutcomeUnknown
	op.Return = 0
	op.Found, op.Result, op.Deleted, op.Succeeded = false, "", 0, false
	return op
}

// failed turns op into one that definitely had no effect.
func failed(op Operation) Operation {
	op = unknown(op)
	op.Outcome = OutcomeFailed
	op.Return = op.Call + 1
	return op
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		ops  []Operation
		want Verdict
	}{
		{"empty", nil, VerdictOK},
		{"concurrent, linearizable", []Operation{
			put(0, "x", "a", 0, 10),
			getAbsent(2, "x", 1, 4),       // before the put took effect
			get(1, "x", 5, 15, "a"),       // after it
			put(1, "x", "b", 20, 30),      //
			get(2, "x", 21, 25, "a"),      // concurrent with put b: may read a
			get(0, "x", 31, 35, "b"),      // after put b returned
			get(0, "x", 36, 40, "b"),      //
			getAbsent(3, "y", 0, 100),     // another key
			put(3, "y", "c", 100, 110),    // closed intervals: touching is concurrent
			get(4, "y", 110, 120, "c"),    //
			get(5, "x", 30, 31, "b"),      // sees b at its return time
			getAbsent(6, "z", 500, 600),   //
			put(6, "z", "", 700, 800),     // the empty value exists
			get(6, "z", 900, 1000, ""),    //
			del(7, "z", 1100, 1200, 1),    //
			getAbsent(7, "z", 1300, 1400), //
		}, VerdictOK},
		{"stale read after a completed put", []Operation{
			put(0, "x", "a", 0, 10),
			put(0, "x", "b", 20, 30),
			get(1, "x", 40, 50, "a"),
		}, VerdictIllegal},
		{"read of a value never written", []Operation{
			put(0, "x", "a", 0, 10),
			get(1, "x", 20, 30, "zzz"),
		}, VerdictIllegal},
		{"read absent after a completed put", []Operation{
			put(0, "x", "a", 0, 10),
			getAbsent(1, "x", 20, 30),
		}, VerdictIllegal},
		{"empty value is not absent", []Operation{
			put(0, "x", "", 0, 10),
			getAbsent(1, "x", 20, 30),
		}, VerdictIllegal},
		{"keys are independent", []Operation{
			put(0, "x", "a", 0, 10),
			get(1, "y", 20, 30, "a"),
		}, VerdictIllegal},
		{"read goes back in time", []Operation{
			put(0, "x", "a", 0, 10),
			put(0, "x", "b", 20, 100),
			get(1, "x", 30, 40, "b"),
			get(1, "x", 50, 60, "a"),
		}, VerdictIllegal},

		{"unknown put seen later", []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			get(1, "x", 100, 110, "a"),
			get(1, "x", 200, 210, "a"),
		}, VerdictOK},
		{"unknown put never seen", []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			getAbsent(1, "x", 100, 110),
			getAbsent(1, "x", 200, 210),
		}, VerdictOK},
		{"unknown put seen late, long after its client gave up", []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			getAbsent(1, "x", 100, 110),
			getAbsent(1, "x", 200, 210),
			get(1, "x", 300, 310, "a"),
		}, VerdictOK},
		{"unknown put seen, then gone without a delete", []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			get(1, "x", 100, 110, "a"),
			getAbsent(1, "x", 200, 210),
		}, VerdictIllegal},
		{"unknown put cannot take effect before its call", []Operation{
			getAbsent(1, "x", 0, 10),
			get(1, "x", 20, 30, "a"),
			unknown(put(0, "x", "a", 40, 0)),
		}, VerdictIllegal},
		{"unknown put overwrites a later completed put", []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			put(1, "x", "b", 10, 20),
			get(1, "x", 30, 40, "a"),
		}, VerdictOK},
		{"unknown put takes effect once", []Operation{
			unknown(put(0, "x", "a", 0, 0)),
			put(1, "x", "b", 10, 20),
			get(1, "x", 30, 40, "a"),
			get(1, "x", 50, 60, "b"),
		}, VerdictIllegal},
		{"unknown delete may have happened", []Operation{
			put(0, "x", "a", 0, 10),
			unknown(del(0, "x", 20, 0, 0)),
			get(1, "x", 30, 40, "a"),
			getAbsent(1, "x", 50, 60),
		}, VerdictOK},
		{"unknown delete happens once", []Operation{
			put(0, "x", "a", 0, 10),
			unknown(del(0, "x", 20, 0, 0)),
			getAbsent(1, "x", 30, 40),
			get(1, "x", 50, 60, "a"),
		}, VerdictIllegal},
		{"unknown cas seen", []Operation{
			put(0, "x", "a", 0, 10),
			unknown(cas(0, "x", "a", "b", 20, 0, false)),
			get(1, "x", 30, 40, "b"),
		}, VerdictOK},
		{"unknown cas applies only if its compare holds", []Operation{
			put(0, "x", "z", 0, 10),
			unknown(cas(0, "x", "a", "b", 20, 0, false)),
			get(1, "x", 30, 40, "b"),
		}, VerdictIllegal},
		{"unknown read is dropped", []Operation{
			put(0, "x", "a", 0, 10),
			unknown(get(1, "x", 20, 0, "")),
			get(2, "x", 30, 40, "a"),
		}, VerdictOK},

		{"cas succeeds on the expected value", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "a", "b", 20, 30, true),
			get(1, "x", 40, 50, "b"),
		}, VerdictOK},
		{"cas fails on another value and writes nothing", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "z", "b", 20, 30, false),
			get(1, "x", 40, 50, "a"),
		}, VerdictOK},
		{"cas reports success on another value", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "z", "b", 20, 30, true),
		}, VerdictIllegal},
		{"cas reports failure on the expected value", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "a", "b", 20, 30, false),
		}, VerdictIllegal},
		{"failed cas writes nothing", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "z", "b", 20, 30, false),
			get(1, "x", 40, 50, "b"),
		}, VerdictIllegal},
		{"cas on an absent key with an empty expect fails", []Operation{
			cas(1, "x", "", "b", 20, 30, true),
		}, VerdictIllegal},
		{"cas expecting absent on an absent key", []Operation{
			casAbsent(0, "x", "a", 0, 10, true),
			get(0, "x", 20, 30, "a"),
			casAbsent(1, "x", "b", 40, 50, false),
			get(1, "x", 60, 70, "a"),
		}, VerdictOK},
		{"cas expecting absent succeeds on an existing key", []Operation{
			put(0, "x", "a", 0, 10),
			casAbsent(1, "x", "b", 20, 30, true),
		}, VerdictIllegal},
		{"cas expecting absent fails on an absent key", []Operation{
			casAbsent(1, "x", "b", 20, 30, false),
		}, VerdictIllegal},
		{"two concurrent cas from one value: one wins", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "a", "b", 20, 30, true),
			cas(2, "x", "a", "c", 20, 30, false),
			get(0, "x", 40, 50, "b"),
		}, VerdictOK},
		{"two concurrent cas from one value: both win", []Operation{
			put(0, "x", "a", 0, 10),
			cas(1, "x", "a", "b", 20, 30, true),
			cas(2, "x", "a", "c", 20, 30, true),
		}, VerdictIllegal},

		{"delete counts", []Operation{
			del(0, "x", 0, 10, 0),
			put(0, "x", "a", 20, 30),
			del(0, "x", 40, 50, 1),
			del(0, "x", 60, 70, 0),
			getAbsent(0, "x", 80, 90),
		}, VerdictOK},
		{"delete of an existing key reports 0", []Operation{
			put(0, "x", "a", 0, 10),
			del(0, "x", 20, 30, 0),
		}, VerdictIllegal},
		{"delete of an absent key reports 1", []Operation{
			del(0, "x", 20, 30, 1),
		}, VerdictIllegal},
		{"read after delete sees the old value", []Operation{
			put(0, "x", "a", 0, 10),
			del(0, "x", 20, 30, 1),
			get(0, "x", 40, 50, "a"),
		}, VerdictIllegal},

		{"failed ops are ignored", []Operation{
			failed(put(0, "x", "a", 0, 0)),
			failed(del(0, "x", 10, 0, 0)),
			getAbsent(1, "x", 20, 30),
			put(1, "x", "b", 40, 50),
			failed(del(0, "x", 60, 0, 0)),
			failed(cas(0, "x", "b", "c", 70, 0, false)),
			get(1, "x", 80, 90, "b"),
		}, VerdictOK},
		{"a failed put must not be seen", []Operation{
			failed(put(0, "x", "a", 0, 0)),
			get(1, "x", 20, 30, "a"),
		}, VerdictIllegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(History{Operations: tt.ops}, Options{})
			if r.Verdict != tt.want {
				t.Errorf("verdict %q, want %q", r.Verdict, tt.want)
			}
		})
	}
}

func TestCheckCounts(t *testing.T) {
	h := History{Operations: []Operation{
		put(0, "x", "a", 0, 10),
		failed(put(1, "y", "b", 0, 0)),   // dropped
		unknown(get(2, "z", 0, 0, "")),   // dropped
		unknown(put(3, "w", "c", 20, 0)), // kept
		get(4, "x", 20, 30, "a"),
	}}
	r := Check(h, Options{})
	if r.Verdict != VerdictOK || r.Operations != 3 || r.Keys != 2 {
		t.Errorf("got verdict %q, %d operations, %d keys; want ok, 3, 2", r.Verdict, r.Operations, r.Keys)
	}
}

func TestCheckPanicsOnInvalidHistory(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "operation 1: kind") {
			t.Errorf("panic %q, want one naming operation 1's kind", msg)
		}
	}()
	Check(History{Operations: []Operation{put(0, "x", "a", 0, 10), {Kind: "scan", Key: "x", Outcome: OutcomeOK}}}, Options{})
}

// TestCheckGenerated checks histories that are linearizable by construction,
// with and without unknown and failed outcomes, then breaks one read in each
// and expects the check to notice.
func TestCheckGenerated(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		cfg := genConfig{seed: seed, ops: 2000, keys: 8, clients: 6}
		if seed%2 == 0 {
			cfg.unknownPercent, cfg.failedPercent = 3, 3
		}
		h := generate(cfg)
		if r := Check(h, Options{}); r.Verdict != VerdictOK {
			t.Fatalf("seed %d: generated history: verdict %q, want ok", seed, r.Verdict)
		}
		broken := breakARead(t, h)
		if r := Check(broken, Options{}); r.Verdict != VerdictIllegal {
			t.Fatalf("seed %d: broken history: verdict %q, want illegal", seed, r.Verdict)
		}
	}
}

// breakARead returns a copy of h in which the last ok read that found a
// value reads one nobody wrote.
func breakARead(t *testing.T, h History) History {
	broken := History{Operations: append([]Operation(nil), h.Operations...)}
	for i := len(broken.Operations) - 1; i >= 0; i-- {
		op := &broken.Operations[i]
		if op.Kind == KindGet && op.Outcome == OutcomeOK && op.Found {
			op.Result = "never-written"
			return broken
		}
	}
	t.Fatal("no read to break")
	return History{}
}

// TestCheckTimeout needs a history porcupine cannot finish quickly: many
// concurrent writes of distinct values and a read nobody could have seen,
// so every order of the writes is tried. Under js/wasm this passes only if
// the model yields, so that the checker's timer gets to run.
func TestCheckTimeout(t *testing.T) {
	const writes = 24
	var h History
	for c := 0; c < writes; c++ {
		h.Add(put(c, "x", string(rune('A'+c)), 0, 100))
	}
	h.Add(get(writes, "x", 0, 200, "never-written"))
	r := Check(h, Options{Timeout: 100 * time.Millisecond})
	if r.Verdict != VerdictUndecided {
		t.Errorf("verdict %q, want timeout", r.Verdict)
	}
}

func TestWriteHTML(t *testing.T) {
	for _, tt := range []struct {
		name string
		ops  []Operation
		want Verdict
	}{
		{"illegal", []Operation{
			put(0, "key-alpha", "a", 0, 10),
			put(0, "key-alpha", "b", 20, 30),
			get(1, "key-alpha", 40, 50, "a"),
			unknown(put(2, "key-beta", "c", 0, 0)),
			get(3, "key-beta", 40, 50, "c"),
		}, VerdictIllegal},
		{"ok", []Operation{
			put(0, "key-alpha", "a", 0, 10),
			put(0, "key-alpha", "b", 20, 30),
			get(1, "key-alpha", 40, 50, "b"),
			unknown(put(2, "key-beta", "c", 0, 0)),
			get(3, "key-beta", 40, 50, "c"),
		}, VerdictOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(History{Operations: tt.ops}, Options{})
			if r.Verdict != tt.want {
				t.Fatalf("verdict %q, want %q", r.Verdict, tt.want)
			}
			var buf bytes.Buffer
			if err := WriteHTML(&buf, r); err != nil {
				t.Fatal(err)
			}
			html := buf.String()
			for _, want := range []string{"<html", "key-alpha", "key-beta", `unknown put(key-beta, \"c\")`, "history[3], client 2"} {
				if !strings.Contains(html, want) {
					t.Errorf("HTML does not contain %q", want)
				}
			}
		})
	}
}

func TestWriteHTMLWithoutCheck(t *testing.T) {
	if err := WriteHTML(&bytes.Buffer{}, Result{}); err == nil {
		t.Error("WriteHTML of a zero Result: no error")
	}
}

func BenchmarkCheck(b *testing.B) {
	h := generate(genConfig{seed: 1, ops: 10000, keys: 16, clients: 8})
	benchmarkCheck(b, h)
}

// BenchmarkCheckUnknown is BenchmarkCheck with 1% unknown and 1% failed
// outcomes, which fork the model's state and keep writes open to the end.
func BenchmarkCheckUnknown(b *testing.B) {
	h := generate(genConfig{seed: 1, ops: 10000, keys: 16, clients: 8, unknownPercent: 1, failedPercent: 1})
	benchmarkCheck(b, h)
}

func benchmarkCheck(b *testing.B, h History) {
	b.ReportAllocs()
	for b.Loop() {
		if r := Check(h, Options{}); r.Verdict != VerdictOK {
			b.Fatalf("verdict %q, want ok", r.Verdict)
		}
	}
	b.ReportMetric(float64(len(h.Operations)), "ops/history")
}

// overBudget returns operations on key whose search blows up: many
// concurrent unknown writes of distinct values and a read nobody could have
// seen, so porcupine tries every subset of the writes before the read.
func overBudget(key string, client int) []Operation {
	const writes = 24
	var ops []Operation
	for c := 0; c < writes; c++ {
		ops = append(ops, unknown(put(client+c, key, string(rune('A'+c)), 0, 0)))
	}
	return append(ops, get(client+writes, key, 0, 200, "never-written"))
}

// TestCheckMemoryBudget: a key whose search goes past the memory budget
// makes the check undecided, naming the key, and does so quickly.
func TestCheckMemoryBudget(t *testing.T) {
	start := time.Now()
	r := Check(History{Operations: overBudget("hot", 0)}, Options{MemoryMaxBytes: 1 << 20})
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v to give up", elapsed)
	}
	if r.Verdict != VerdictUndecided {
		t.Fatalf("verdict %q (%s), want undecided", r.Verdict, r.Reason)
	}
	for _, want := range []string{"key hot: ", "memory budget of 1 MiB", "25 operations"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("reason %q does not contain %q", r.Reason, want)
		}
	}
}

// TestCheckMemoryBudgetIsMemory: the budget bounds what the search really
// allocates. A key with many unknown writes carries a state set of
// hundreds of registers; charging each step a fixed size, as the budget
// once did, let a 1 MiB search allocate over 250 MiB.
func TestCheckMemoryBudgetIsMemory(t *testing.T) {
	const budget = 16 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := Check(History{Operations: overBudget("hot", 0)}, Options{MemoryMaxBytes: budget})
	runtime.ReadMemStats(&after)
	if r.Verdict != VerdictUndecided {
		t.Fatalf("verdict %q (%s), want undecided", r.Verdict, r.Reason)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 4*budget {
		t.Errorf("the check allocated %d MiB under a budget of %d MiB", allocated>>20, budget>>20)
	}
}

// TestCheckMemoryBudgetDoesNotHideIllegal: a key over budget leaves the
// verdict undecided only if every other key is fine; an illegal one, before
// or after it in key order, still makes the history illegal.
func TestCheckMemoryBudgetDoesNotHideIllegal(t *testing.T) {
	for _, illegalKey := range []string{"a", "z"} {
		ops := overBudget("m", 10)
		ops = append(ops,
			put(0, illegalKey, "1", 0, 10),
			put(0, illegalKey, "2", 20, 30),
			get(1, illegalKey, 40, 50, "1"), // stale
		)
		r := Check(History{Operations: ops}, Options{MemoryMaxBytes: 1 << 20})
		if r.Verdict != VerdictIllegal || !strings.Contains(r.Reason, "key "+illegalKey+": no order") {
			t.Errorf("illegal key %s: verdict %q (%s), want illegal, naming the key", illegalKey, r.Verdict, r.Reason)
		}
	}
}
