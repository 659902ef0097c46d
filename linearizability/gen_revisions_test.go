package linearizability

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// genRevisionConfigs are the generated histories with revisions the tests
// check: odd seeds with every outcome ok, even seeds with unknown and
// failed outcomes too.
func genRevisionConfigs() []genConfig {
	var cfgs []genConfig
	for seed := uint64(1); seed <= 8; seed++ {
		cfg := genConfig{seed: seed, ops: 2000, keys: 8, clients: 6, revisions: true}
		if seed%2 == 0 {
			cfg.unknownPercent, cfg.failedPercent = 2, 3
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs
}

// TestCheckGeneratedRevisions checks generated histories with revisions,
// range reads and deletes, txns and serializable reads, which are
// linearizable by construction, and checks that the generator exercised
// every kind.
func TestCheckGeneratedRevisions(t *testing.T) {
	for _, cfg := range genRevisionConfigs() {
		h := generate(cfg)
		if err := h.Validate(); err != nil {
			t.Fatalf("seed %d: generated history is invalid: %v", cfg.seed, err)
		}
		r := Check(h, Options{})
		if r.Verdict != VerdictOK {
			t.Fatalf("seed %d: generated history: verdict %q (%s), want ok", cfg.seed, r.Verdict, r.Reason)
		}
		if r.Revisions == 0 || r.Revisions < r.Operations-countOutcome(h, OutcomeUnknown) {
			t.Errorf("seed %d: %d of %d operations had revisions checked", cfg.seed, r.Revisions, r.Operations)
		}
		if cfg.unknownPercent > 0 && r.Resolved == 0 {
			t.Errorf("seed %d: no unknown write resolved from a read", cfg.seed)
		}
		seen := make(map[string]int)
		for _, op := range h.Operations {
			if op.Outcome != OutcomeOK {
				continue
			}
			kind := string(op.Kind)
			switch {
			case op.Serializable:
				kind = "serializable " + kind
			case op.Kind == KindDelete && op.End != "":
				kind = "range delete"
			}
			seen[kind]++
			if op.Kind == KindTxn && op.Revision > 1 {
				seen["txn that wrote"]++
			}
			if op.Kind == KindRange && len(op.KVs) > 1 {
				seen["range of several keys"]++
			}
			if op.Kind == KindDelete && op.Deleted > 1 {
				seen["delete of several keys"]++
			}
			if op.Kind == KindGet && op.Version > 1 {
				seen["key written twice"]++
			}
		}
		for _, kind := range []string{"put", "get", "delete", "range delete", "cas", "range", "txn", "serializable get", "serializable range",
			"txn that wrote", "range of several keys", "delete of several keys", "key written twice"} {
			if seen[kind] == 0 {
				t.Errorf("seed %d: no ok %s generated", cfg.seed, kind)
			}
		}
	}
}

func countOutcome(h History, o Outcome) int {
	n := 0
	for _, op := range h.Operations {
		if op.Outcome == o {
			n++
		}
	}
	return n
}

// A breaker changes one operation of a correct history so that exactly one
// rule fails, and returns the substring its reason must contain; ok is
// false when the history offers nothing to break.
type breaker func(h History) (reason string, ok bool)

// TestCheckGeneratedRevisionsBroken breaks each generated history in
// several ways, one at a time, and expects each to be caught by its rule.
func TestCheckGeneratedRevisionsBroken(t *testing.T) {
	breakers := []struct {
		name   string
		break_ breaker
	}{
		{"a read's value", breakReadValue},
		{"a read's value, anywhere", breakAnyReadValue},
		{"a read's mod revision", breakModRevision},
		{"a read's version", breakVersion},
		{"a header revision moved back", breakHeaderBack},
		{"a duplicated revision", breakDuplicate},
		{"a serializable read moved to the future", breakSerializableFuture},
	}
	for _, cfg := range genRevisionConfigs() {
		h := generate(cfg)
		for _, b := range breakers {
			t.Run(fmt.Sprintf("seed %d/%s", cfg.seed, b.name), func(t *testing.T) {
				broken := History{Operations: slices.Clone(h.Operations)}
				want, ok := b.break_(broken)
				if !ok {
					t.Fatal("nothing to break")
				}
				if err := broken.Validate(); err != nil {
					t.Fatalf("broken history is invalid: %v", err)
				}
				r := Check(broken, Options{})
				if testing.Verbose() {
					t.Logf("%s", r.Reason)
				}
				if r.Verdict != VerdictIllegal || !strings.Contains(r.Reason, want) {
					t.Errorf("verdict %q, reason %q; want illegal, with a reason containing %q", r.Verdict, r.Reason, want)
				}
			})
		}
	}
}

// firstGap returns the first revision that no ok operation of h created:
// one an unknown write may have created. Before it, the replay knows every
// key exactly, so a broken read there is caught by the replay itself.
func firstGap(h History) int64 {
	created := make(map[int64]bool)
	for _, op := range h.Operations {
		c := checked{op: &op, rev: op.Revision}
		if op.Outcome == OutcomeOK && c.creates() {
			created[op.Revision] = true
		}
	}
	gap := int64(2)
	for created[gap] {
		gap++
	}
	return gap
}

// lastRead returns the index of the last ok get before the first gap that
// found its key and satisfies cond, or -1.
func lastRead(h History, cond func(op *Operation) bool) int {
	gap := firstGap(h)
	for i := len(h.Operations) - 1; i >= 0; i-- {
		op := &h.Operations[i]
		if op.Kind == KindGet && op.Outcome == OutcomeOK && op.Found && op.Revision < gap && cond(op) {
			return i
		}
	}
	return -1
}

func breakReadValue(h History) (string, bool) {
	i := lastRead(h, func(*Operation) bool { return true })
	if i < 0 {
		return "", false
	}
	op := &h.Operations[i]
	op.Result = "never-written"
	return fmt.Sprintf("history[%d] (%s) read key %s as \"never-written\"", i, Describe(op), describeKey(op.Key)), true
}

// breakAnyReadValue breaks the last linearizable get that found a value,
// wherever it is: after an unknown write the replay may not know the key,
// and then porcupine must catch it.
func breakAnyReadValue(h History) (string, bool) {
	for i := len(h.Operations) - 1; i >= 0; i-- {
		op := &h.Operations[i]
		if op.Kind == KindGet && op.Outcome == OutcomeOK && op.Found && !op.Serializable {
			op.Result = "never-written"
			return "key " + describeKey(op.Key), true
		}
	}
	return "", false
}

func breakModRevision(h History) (string, bool) {
	i := lastRead(h, func(op *Operation) bool { return op.ModRevision < op.Revision })
	if i < 0 {
		return "", false
	}
	op := &h.Operations[i]
	op.ModRevision++
	return fmt.Sprintf("history[%d] (%s) read key %s as %q mod %d", i, Describe(op), describeKey(op.Key), op.Result, op.ModRevision), true
}

func breakVersion(h History) (string, bool) {
	i := lastRead(h, func(op *Operation) bool { return op.Version > 1 || op.ModRevision > op.CreateRevision })
	if i < 0 {
		return "", false
	}
	op := &h.Operations[i]
	if op.Version < op.ModRevision-op.CreateRevision+1 {
		op.Version++
	} else {
		op.Version--
	}
	return fmt.Sprintf("history[%d] (%s) read key %s as %q mod %d create %d version %d, but at revision %d it was",
		i, Describe(op), describeKey(op.Key), op.Result, op.ModRevision, op.CreateRevision, op.Version, op.Revision), true
}

// breakHeaderBack moves the header revision of the last linearizable get
// it can back to just before the newest revision an operation that
// returned before the get was called had seen.
func breakHeaderBack(h History) (string, bool) {
	for i := len(h.Operations) - 1; i >= 0; i-- {
		op := &h.Operations[i]
		if op.Kind != KindGet || op.Outcome != OutcomeOK || op.Serializable {
			continue
		}
		var newest int64
		for j := range h.Operations {
			prev := &h.Operations[j]
			if prev.Outcome == OutcomeOK && prev.Return < op.Call {
				newest = max(newest, prev.Revision)
			}
		}
		if newest < 2 || op.ModRevision > newest-1 {
			continue
		}
		op.Revision = newest - 1
		return fmt.Sprintf("then history[%d] (%s), called at %d, saw revision %d", i, Describe(op), op.Call, op.Revision), true
	}
	return "", false
}

// breakDuplicate gives the last ok put the revision of an earlier ok put.
func breakDuplicate(h History) (string, bool) {
	last := -1
	for i := len(h.Operations) - 1; i >= 0; i-- {
		op := &h.Operations[i]
		if op.Kind != KindPut || op.Outcome != OutcomeOK {
			continue
		}
		if last < 0 {
			last = i
			continue
		}
		h.Operations[last].Revision = op.Revision
		return fmt.Sprintf("revision %d was created twice", op.Revision), true
	}
	return "", false
}

// breakSerializableFuture moves the last serializable read whose revision
// an ok write created to just before that write was called, under a client
// id of its own.
func breakSerializableFuture(h History) (string, bool) {
	writers := make(map[int64]int)
	client := 0
	for i, op := range h.Operations {
		client = max(client, op.Client+1)
		c := checked{op: &op, rev: op.Revision}
		if op.Outcome == OutcomeOK && c.creates() {
			writers[op.Revision] = i
		}
	}
	for i := len(h.Operations) - 1; i >= 0; i-- {
		op := &h.Operations[i]
		w, ok := writers[op.Revision]
		if !op.Serializable || op.Outcome != OutcomeOK || !ok {
			continue
		}
		op.Client = client
		op.Call, op.Return = h.Operations[w].Call-2, h.Operations[w].Call-1
		return fmt.Sprintf("history[%d] (%s), which returned at %d, saw revision %d", i, Describe(op), op.Return, op.Revision), true
	}
	return "", false
}

// BenchmarkCheckRevisions is BenchmarkCheck on a history with revisions
// and every kind of operation: range reads, range deletes, txns and
// serializable reads besides puts, gets, deletes and cas.
func BenchmarkCheckRevisions(b *testing.B) {
	h := generate(genConfig{seed: 1, ops: 10000, keys: 16, clients: 8, revisions: true})
	benchmarkCheck(b, h)
}

// BenchmarkCheckRevisionsUnknown is BenchmarkCheckRevisions with 1% unknown
// and 1% failed outcomes.
func BenchmarkCheckRevisionsUnknown(b *testing.B) {
	h := generate(genConfig{seed: 1, ops: 10000, keys: 16, clients: 8, revisions: true, unknownPercent: 1, failedPercent: 1})
	benchmarkCheck(b, h)
}

// TestRevisionsDecideWhenComplete: with every revision known, the revision
// pass decides a contended history that porcupine's search cannot finish
// within a small budget; with one revision missing, porcupine must decide,
// and runs out. A broken read is illegal either way.
func TestRevisionsDecideWhenComplete(t *testing.T) {
	h := generate(genConfig{seed: 3, ops: 3000, keys: 1, clients: 24, revisions: true})
	small := Options{MemoryMaxBytes: 1 << 20}
	r := Check(h, small)
	if r.Verdict != VerdictOK || !strings.HasPrefix(r.DecidedBy, "revisions") {
		t.Fatalf("complete history: verdict %q decided by %q (%s), want ok by revisions", r.Verdict, r.DecidedBy, r.Reason)
	}
	t.Logf("complete: decided by %s", r.DecidedBy)

	missing := History{Operations: slices.Clone(h.Operations)}
	for i := range missing.Operations {
		if op := &missing.Operations[i]; op.Kind == KindGet && op.Outcome == OutcomeOK && !op.Serializable {
			op.Revision, op.ModRevision, op.CreateRevision, op.Version = 0, 0, 0, 0
			break
		}
	}
	if r := Check(missing, small); r.DecidedBy != "" && r.DecidedBy != "porcupine" {
		t.Fatalf("one revision missing: decided by %q, want porcupine or nobody", r.DecidedBy)
	}

	broken := History{Operations: slices.Clone(h.Operations)}
	for i := len(broken.Operations) - 1; i >= 0; i-- {
		if op := &broken.Operations[i]; op.Kind == KindGet && op.Outcome == OutcomeOK && op.Found {
			op.Result = "never-written"
			break
		}
	}
	if r := Check(broken, small); r.Verdict != VerdictIllegal {
		t.Fatalf("broken read: verdict %q, want illegal", r.Verdict)
	}
}

// TestCheckAfter: reads made after a complete history ended are checked
// against its replayed end state, and agree with checking the history
// with them appended: a read of the end state is ok, a stale one, one with
// a wrong version, and one at another revision are not (or hand the
// decision back to Check).
func TestCheckAfter(t *testing.T) {
	h := generate(genConfig{seed: 5, ops: 2000, keys: 4, clients: 6, revisions: true})
	r := Check(h, Options{})
	if r.Verdict != VerdictOK || !strings.HasPrefix(r.DecidedBy, "revisions") {
		t.Fatalf("generated history: %s decided by %q", r.Verdict, r.DecidedBy)
	}
	// The end state, read by a history's own model: replay the ok writes.
	var last int64
	var maxRev int64
	for _, op := range h.Operations {
		last = max(last, op.Return)
		maxRev = max(maxRev, op.Revision)
	}
	finals := func() []Operation {
		var reads []Operation
		for _, k := range []string{"k0", "k1", "k2", "k3"} {
			reads = append(reads, Operation{Client: 10000, Kind: KindGet, Key: k, Call: last + 1, Return: last + 1, Outcome: OutcomeOK, Revision: maxRev})
		}
		return reads
	}
	// Fill the reads from the replayed end state; checking the history with
	// them appended (which does not use it) must agree that they are right.
	reads := finals()
	for i := range reads {
		if st := r.end.keys[reads[i].Key]; st != nil && st.exists {
			reads[i].Found, reads[i].Result = true, st.value
			reads[i].ModRevision, reads[i].CreateRevision, reads[i].Version = st.mod, st.create, st.version
		}
	}
	if reason, ok := CheckAfter(r, reads); !ok || reason != "" {
		t.Fatalf("CheckAfter of the end state: %q (decided %v)", reason, ok)
	}
	if want := Check(History{Operations: append(slices.Clone(h.Operations), reads...)}, Options{}); want.Verdict != VerdictOK {
		t.Fatalf("Check with the end state's reads appended: %s: %s", want.Verdict, want.Reason)
	}

	for _, tt := range []struct {
		name   string
		breakf func(*Operation)
	}{
		{"wrong value", func(op *Operation) {
			op.Found, op.Result = true, "never-written"
			op.ModRevision, op.CreateRevision, op.Version = maxRev, maxRev, 1
		}},
		{"wrong version", func(op *Operation) {
			if op.Found {
				op.Version++
			} else {
				op.Found, op.Result, op.ModRevision, op.CreateRevision, op.Version = true, "x", 2, 2, 1
			}
		}},
	} {
		broken := slices.Clone(reads)
		tt.breakf(&broken[0])
		reason, ok := CheckAfter(r, broken)
		want := Check(History{Operations: append(slices.Clone(h.Operations), broken...)}, Options{})
		if !ok || reason == "" || want.Verdict != VerdictIllegal {
			t.Errorf("%s: CheckAfter %q (decided %v), Check %s", tt.name, reason, ok, want.Verdict)
		}
	}
	stale := slices.Clone(reads)
	stale[0].Revision = maxRev - 1
	if _, ok := CheckAfter(r, stale); ok {
		t.Error("a read at another revision than the last was decided; it must go to Check")
	}
	incomplete := Check(History{Operations: append(slices.Clone(h.Operations), Operation{Client: 20000, Kind: KindPut, Key: "k0", Value: "u", Call: 1, Outcome: OutcomeUnknown})}, Options{})
	if _, ok := CheckAfter(incomplete, reads); ok {
		t.Error("a history with an unresolved unknown write was decided by CheckAfter")
	}
}
