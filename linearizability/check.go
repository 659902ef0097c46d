package linearizability

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unsafe"

	"github.com/anishathalye/porcupine"
)

// Verdict is the answer of a check.
type Verdict string

const (
	// VerdictOK: the revisions agree and every key's operations have a
	// linearization.
	VerdictOK Verdict = "ok"
	// VerdictIllegal: the history cannot have come from a linearizable
	// store. This is a bug in the store (or in the recorder), never a flake.
	VerdictIllegal Verdict = "illegal"
	// VerdictUndecided: the check gave up before an answer (its timeout, or
	// its memory budget). Porcupine's search is exponential in the worst
	// case; more concurrency per key or more unknown writes make it slower.
	VerdictUndecided Verdict = "undecided"
)

// DefaultMemoryMaxBytes bounds the memory porcupine's search may use on one
// key when Options.MemoryMaxBytes is 0.
const DefaultMemoryMaxBytes = 1 << 30

// Options are a check's inputs besides the history.
type Options struct {
	// Timeout bounds the search for linearizations; 0 means no bound.
	Timeout time.Duration
	// MemoryMaxBytes bounds the memory the search may use on one key (an
	// estimate from its steps and their size; porcupine caches every state
	// it visits); 0 means DefaultMemoryMaxBytes. A key over it makes the
	// check undecided, not illegal.
	MemoryMaxBytes int64
	// Resolved is what the recorder learnt after the fact about operations
	// whose outcome the client never learnt, by index in
	// History.Operations: the revision each took effect at, or that it
	// never did (see Resolution). Resolving them is what keeps the check
	// exact and tractable; etcd's robustness tests do the same from the
	// members' logs.
	Resolved map[int]Resolution
}

// Resolution is the fate of an operation whose outcome was unknown.
type Resolution struct {
	// Revision is the revision the operation created, or 0 if it never took
	// effect (or took effect after every recorded operation had ended,
	// which no check can tell apart from never). A write that took effect
	// but changed nothing (a delete of an absent key, a cas whose compare
	// failed) changed nothing and is resolved 0 too.
	Revision int64
}

// Result is the outcome of Check, and what WriteHTML needs to draw it.
type Result struct {
	Verdict Verdict
	// Reason says why the verdict is not ok: the operations that disagree
	// and how, or what the check ran out of.
	Reason string
	// Operations is how many operations were checked: the history's, less
	// failed operations, reads with an unknown outcome and writes resolved
	// as never having taken effect.
	Operations int
	// Keys is how many keys (porcupine partitions) they touched.
	Keys int
	// Revisions is how many of them had their revisions checked (recorded,
	// or learnt for an unknown write).
	Revisions int
	// Resolved is how many unknown writes were resolved: by Options.Resolved
	// or because a read saw the unique value they wrote.
	Resolved int
	// DecidedBy says which pass decided an ok verdict: "porcupine" when
	// some operation's revision is not known (porcupine decides, the
	// revision pass having found nothing wrong), "revisions and porcupine"
	// when every revision is known and porcupine agreed, and "revisions
	// (porcupine gave up: ...)" when porcupine ran out of its budget.
	DecidedBy string

	ops     []porcupine.Operation
	timeout time.Duration
	// end is the replayed store after the history, when every revision was
	// known and the history is linearizable: CheckAfter reads it.
	end *endState
	// log is what the revision pass's replay did at each revision, when it
	// ran to the end without finding anything wrong: CheckWatches judges
	// the watchers against it.
	log *revisionLog
}

// Check checks h. It runs two passes, both of which must pass:
//
//   - the revision pass, over the whole history: two writes never share a
//     revision (the operations of one txn share one), revisions never go
//     back in real time, and every read, linearizable or serializable,
//     returns exactly the state that replaying the writes in revision order
//     gives at its header revision: values, mod and create revisions,
//     versions, and the counts of deletes;
//   - porcupine, key by key: every key's operations (a multi-key operation
//     contributes its share to each key it covers) have a linearization in
//     which reads see the latest write, with its revisions.
//
// Failed operations and reads with an unknown outcome are dropped: they had
// no effect. Unknown writes are resolved from opts.Resolved and from reads
// that saw their unique values; those left return "at infinity" (after
// every other return) and the model lets them take effect or not.
//
// Check panics if h does not Validate: a history is built by this project's
// own recorders (or read by ReadJSON, which validates), so an invalid one is
// a bug to fix, not a condition to check around.
func Check(h History, opts Options) Result {
	if err := h.Validate(); err != nil {
		panic(fmt.Sprintf("linearizability: Check of an invalid history: %v", err))
	}
	if opts.MemoryMaxBytes == 0 {
		opts.MemoryMaxBytes = DefaultMemoryMaxBytes
	}
	p := prepare(&h, opts.Resolved)
	r := Result{Operations: len(p.ops), Resolved: p.resolved, timeout: opts.Timeout}
	var keys int
	r.ops, keys = p.porcupineOperations()
	r.Keys = keys
	var reason string
	reason, r.Revisions = p.checkRevisions()
	if reason != "" {
		r.Verdict, r.Reason = VerdictIllegal, reason
		return r
	}
	r.log = p.log
	if !p.complete() {
		r.Verdict, r.Reason = checkKeys(r.ops, opts)
		if r.Verdict == VerdictOK {
			r.DecidedBy = "porcupine"
		}
		return r
	}
	// Every operation's revision is known: ordering them by revision (the
	// write that created one before the reads served at it, then by call)
	// is a linearization, which the revision pass has just checked
	// against real time and replayed. Porcupine only confirms it, within a
	// smaller budget, and cannot overrule it unless it finds a key with no
	// linearization at all, which would be a bug in one of the two.
	r.DecidedBy = "revisions"
	cross := opts
	cross.MemoryMaxBytes = min(opts.MemoryMaxBytes, crossCheckMemoryMaxBytes)
	verdict, why := checkKeys(r.ops, cross)
	switch verdict {
	case VerdictIllegal:
		r.Verdict, r.Reason = verdict, why+" (though the revision pass found an order: a bug in the checker)"
		return r
	case VerdictOK:
		r.DecidedBy = "revisions and porcupine"
	default:
		r.DecidedBy = "revisions (porcupine gave up: " + why + ")"
	}
	r.Verdict = VerdictOK
	r.end = p.end
	return r
}

// CheckAfter checks reads made once every operation of a history had
// returned (a run's final reads of every key, say) against the history's
// result r, without checking the history again: each read must be served
// at the history's last revision and return exactly the state the revision
// pass replayed there. It answers only when r is ok and was decided with
// every revision known, and every read is an ok, linearizable get or
// range called after the history's last return, at its last revision;
// otherwise ok is false and the caller checks the history with the reads
// appended (Check), which decides the rest.
func CheckAfter(r Result, reads []Operation) (reason string, ok bool) {
	end := r.end
	if r.Verdict != VerdictOK || end == nil {
		return "", false
	}
	for i := range reads {
		op := &reads[i]
		if err := op.validate(); err != nil || op.Outcome != OutcomeOK || op.Serializable ||
			op.IsWrite() || op.Call <= end.lastReturn || op.Revision != end.rev {
			return "", false
		}
		for _, kv := range op.KVs {
			if !slices.Contains(end.universe, kv.Key) {
				return "", false // a key the history never named: let Check say what it is
			}
		}
	}
	p := &prepared{universe: end.universe}
	at := func(k string) *kvState {
		if s := end.keys[k]; s != nil {
			return s
		}
		return &kvState{}
	}
	for i := range reads {
		op := &reads[i]
		c := &checked{index: -1, op: op, rev: op.Revision, ret: op.Return}
		if reason := p.checkRead(c, at); reason != "" {
			return reason, true
		}
	}
	return "", true
}

// crossCheckMemoryMaxBytes bounds porcupine's search on a key when the
// revision pass has decided already: its answer only confirms.
const crossCheckMemoryMaxBytes = 8 << 20

// checkKeys runs porcupine on each key in turn, so that a verdict names its
// key and a key over budget cannot hide another's illegal history.
func checkKeys(ops []porcupine.Operation, opts Options) (Verdict, string) {
	model := newModel()
	var start time.Time
	if opts.Timeout > 0 {
		start = time.Now()
	}
	undecided := ""
	for _, part := range partitionByKey(ops) {
		key := part[0].Input.(*step).key
		b := &budget{maxBytes: opts.MemoryMaxBytes, stepBytes: stepBytes(len(part))}
		for i := range part {
			part[i].Input.(*step).budget = b
		}
		timeout := time.Duration(0)
		if opts.Timeout > 0 {
			timeout = opts.Timeout - time.Since(start)
			if timeout <= 0 {
				return VerdictUndecided, fmt.Sprintf("no answer within the timeout of %v (key %s not checked)", opts.Timeout, describeKey(key))
			}
		}
		res := porcupine.CheckOperationsTimeout(model, part, timeout)
		for i := range part {
			part[i].Input.(*step).budget = nil
		}
		switch {
		case b.over:
			undecided = cmp.Or(undecided, fmt.Sprintf("key %s: the search went past its memory budget of %d MiB (%d operations, %d steps)",
				describeKey(key), opts.MemoryMaxBytes>>20, len(part), b.steps))
		case res == porcupine.Illegal:
			return VerdictIllegal, fmt.Sprintf("key %s: no order of its %d operations explains what every client saw", describeKey(key), len(part))
		case res == porcupine.Unknown:
			undecided = cmp.Or(undecided, fmt.Sprintf("key %s: no answer within the timeout of %v", describeKey(key), opts.Timeout))
		}
	}
	if undecided != "" {
		return VerdictUndecided, undecided
	}
	return VerdictOK, ""
}

// budget bounds one key's search. Porcupine keeps every (linearized set,
// state) pair it visits, so its memory grows with the steps it takes, each
// about a bitset of the partition's operations plus a state: a set of
// registers, one with no unknown write but as many as one per value and
// count of writes applied after many of them.
type budget struct {
	maxBytes  int64
	stepBytes int64
	spent     int64
	steps     int64
	over      bool
}

// stepBytes estimates what one step of a search over n operations keeps
// besides its state: a bitset of n bits and a cache entry.
func stepBytes(n int) int64 { return int64((n+63)/64*8) + 96 }

// registerBytes is what one register of a state set costs (its value's
// bytes are the history's, shared).
const registerBytes = int64(unsafe.Sizeof(register{}))

// spend charges one step that built a new state set of the given capacity
// (0 if it kept its state) and reports whether the budget allows it. Once
// it does not, every later step fails too, so porcupine's search unwinds at
// once; the caller reads over and reports the key undecided.
func (b *budget) spend(stateCap int) bool {
	if b.over {
		return false
	}
	b.steps++
	b.spent += b.stepBytes + int64(stateCap)*registerBytes
	if b.spent > b.maxBytes {
		b.over = true
		return false
	}
	return true
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
