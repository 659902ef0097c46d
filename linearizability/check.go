package linearizability

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the answer of a check.
type Verdict string

const (
	// VerdictOK: every key's operations have a linearization.
	VerdictOK Verdict = "ok"
	// VerdictIllegal: some key's operations have none. This is a bug in the
	// store (or in the recorder), never a flake.
	VerdictIllegal Verdict = "illegal"
	// VerdictTimeout: the checker gave up before an answer. Porcupine's
	// search is exponential in the worst case; more concurrency per key or
	// more unknown writes make it slower.
	VerdictTimeout Verdict = "timeout"
)

// Result is the outcome of Check, and what WriteHTML needs to draw it.
type Result struct {
	Verdict Verdict
	// Operations is how many operations were checked: the history's, less
	// failed operations and reads with an unknown outcome.
	Operations int
	// Keys is how many keys (porcupine partitions) they touched.
	Keys int

	ops     []porcupine.Operation
	timeout time.Duration
}

// Check checks h with the per-key model (porcupine partitions by key).
// Failed operations and reads with an unknown outcome are dropped: they had
// no effect. Unknown writes return "at infinity" (after every other return)
// and the model lets them take effect or not. A timeout of 0 means no limit.
//
// Check panics if h does not Validate: a history is built by this project's
// own recorders (or read by ReadJSON, which validates), so an invalid one is
// a bug to fix, not a condition to check around.
func Check(h History, timeout time.Duration) Result {
	if err := h.Validate(); err != nil {
		panic(fmt.Sprintf("linearizability: Check of an invalid history: %v", err))
	}
	ops, keys := porcupineOperations(h)
	r := Result{Operations: len(ops), Keys: keys, ops: ops, timeout: timeout}
	switch porcupine.CheckOperationsTimeout(newModel(), ops, timeout) {
	case porcupine.Ok:
		r.Verdict = VerdictOK
	case porcupine.Illegal:
		r.Verdict = VerdictIllegal
	default:
		r.Verdict = VerdictTimeout
	}
	return r
}

// WriteHTML writes porcupine's interactive visualisation of the check that
// produced r: per key, the operations on a timeline and the longest
// linearizations found, with the model's state after each step. For an
// illegal history it marks where every linearization gets stuck.
//
// Check does not keep porcupine's linearization data, which costs time on
// every check and is wanted only for a report, so WriteHTML runs the check
// again (with the same timeout) to collect it. Equal partial linearizations
// may come out in a different order from one call to the next.
func WriteHTML(w io.Writer, r Result) error {
	if r.Verdict == "" {
		return errors.New("linearizability: WriteHTML of a Result that did not come from Check")
	}
	model := newModel()
	_, info := porcupine.CheckOperationsVerbose(model, r.ops, r.timeout)
	if err := porcupine.Visualize(model, info, w); err != nil {
		return fmt.Errorf("linearizability: visualise: %w", err)
	}
	return nil
}

// porcupineOperations turns a valid history into porcupine's operations and
// counts the keys they touch.
func porcupineOperations(h History) ([]porcupine.Operation, int) {
	kept := make([]int, 0, len(h.Operations))
	var last int64 = math.MinInt64
	for i := range h.Operations {
		op := &h.Operations[i]
		if op.Outcome == OutcomeFailed {
			continue // it had no effect
		}
		if op.Outcome == OutcomeUnknown && op.Kind == KindGet {
			continue // a read that may not have happened has no effect either
		}
		kept = append(kept, i)
		last = max(last, op.Call)
		if op.Outcome == OutcomeOK {
			last = max(last, op.Return)
		}
	}
	// An unknown write may take effect at any time after its call, so it
	// returns after everything else. The model may leave it unapplied, which
	// also covers "it never happened".
	infinity := last
	if infinity < math.MaxInt64 {
		infinity++
	}
	clients := denseClients(h, kept)
	keys := make(map[string]struct{})
	ops := make([]porcupine.Operation, len(kept))
	for j, i := range kept {
		op := &h.Operations[i]
		keys[op.Key] = struct{}{}
		ret := op.Return
		if op.Outcome == OutcomeUnknown {
			ret = infinity
		}
		ops[j] = porcupine.Operation{
			ClientId: clients[op.Client],
			Input: &input{
				kind:         op.Kind,
				key:          op.Key,
				value:        op.Value,
				expect:       op.Expect,
				expectAbsent: op.ExpectAbsent,
			},
			Call: op.Call,
			Output: &output{
				unknown:   op.Outcome == OutcomeUnknown,
				found:     op.Found,
				result:    op.Result,
				deleted:   op.Deleted,
				succeeded: op.Succeeded,
			},
			Return:   ret,
			Metadata: metadata{index: i, client: op.Client, revision: op.Revision},
		}
	}
	return ops, len(keys)
}

// denseClients numbers the client ids of the kept operations 0, 1, 2, ...
// in order. Porcupine's visualisation draws a row for every id up to the
// largest, and a simulator that hands out a fresh id after each unknown
// outcome leaves gaps (ids whose only operations were dropped).
func denseClients(h History, kept []int) map[int]int {
	ids := make([]int, 0, len(kept))
	seen := make(map[int]bool)
	for _, i := range kept {
		c := h.Operations[i].Client
		if !seen[c] {
			seen[c] = true
			ids = append(ids, c)
		}
	}
	sort.Ints(ids)
	dense := make(map[int]int, len(ids))
	for n, c := range ids {
		dense[c] = n
	}
	return dense
}
