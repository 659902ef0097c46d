package linearizability

import (
	"math"
	"sort"

	"github.com/anishathalye/porcupine"
)

// checked is one operation that takes part in the check.
type checked struct {
	index int // in History.Operations
	op    *Operation
	// unknown: an unknown write not resolved; it may take effect at any time
	// after its call, at an unknown revision, or never.
	unknown bool
	// resolved: an unknown write learnt to have taken effect at rev.
	resolved bool
	// rev is the header revision of an ok operation, or the revision a
	// resolved one created; 0 when not recorded.
	rev int64
	// ret is the return time: recorded for ok operations, infinity for
	// unknown ones, and for resolved ones the earliest return of an
	// operation that saw their revision (infinity if none did).
	ret int64
}

// prepared is a history made ready for both passes.
type prepared struct {
	ops      []checked
	resolved int
	infinity int64
	// universe is every key some operation names or some read returned, in
	// order: the keys a range read or delete is checked on.
	universe []string
	// seen and firstSeen say by when each revision existed: see indexSeen.
	seen      []seenAt
	firstSeen []*checked
	// end is the replayed state after the last revision, once the revision
	// pass has run to the end.
	end *endState
	// log is what the replay did at each revision (see revisionLog).
	log *revisionLog
}

// prepare drops what had no effect, resolves the unknown writes it can and
// bounds when the resolved ones took effect.
func prepare(h *History, given map[int]Resolution) *prepared {
	p := &prepared{}
	seen := observedRevisions(h)
	var last int64 = math.MinInt64
	keys := make(map[string]bool)
	for i := range h.Operations {
		op := &h.Operations[i]
		if op.Outcome == OutcomeFailed || op.Outcome == OutcomeUnknown && !op.IsWrite() {
			continue // no effect; an unknown read's result was never seen either
		}
		c := checked{index: i, op: op, rev: op.Revision, ret: op.Return}
		if op.Outcome == OutcomeUnknown {
			rev, known := resolve(i, op, given, seen)
			switch {
			case known && rev == 0:
				p.resolved++
				continue // it never took effect
			case known:
				p.resolved++
				c.resolved, c.rev = true, rev
			default:
				c.unknown, c.rev = true, 0
			}
		}
		last = max(last, op.Call)
		if op.Outcome == OutcomeOK {
			last = max(last, op.Return)
		}
		for _, k := range op.pointKeys() {
			keys[k] = true
		}
		for _, kv := range op.KVs {
			keys[kv.Key] = true
		}
		p.ops = append(p.ops, c)
	}
	// An unknown write may take effect at any time after its call, so it
	// returns after everything else. The model may leave it unapplied,
	// which also covers "it never happened".
	p.infinity = last
	if p.infinity < math.MaxInt64 {
		p.infinity++
	}
	p.universe = make([]string, 0, len(keys))
	for k := range keys {
		p.universe = append(p.universe, k)
	}
	sort.Strings(p.universe)
	p.boundResolved()
	return p
}

// complete reports whether the revision pass can decide alone: every
// operation checked has a known revision, and no unknown write is left
// unresolved.
func (p *prepared) complete() bool {
	for i := range p.ops {
		if c := &p.ops[i]; c.unknown || c.rev == 0 {
			return false
		}
	}
	return true
}

// pointKeys returns the single keys an operation names (not its ranges).
func (op *Operation) pointKeys() []string {
	switch {
	case op.Kind == KindTxn:
		var keys []string
		for _, t := range op.Ops {
			if t.End == "" {
				keys = append(keys, t.Key)
			}
		}
		return keys
	case op.End == "":
		return []string{op.Key}
	}
	return nil
}

// valueKey names one value written to one key.
type valueKey struct{ key, value string }

// observedRevisions maps each (key, value) that an ok read returned to the
// mod revision it was returned with, keeping only values written by exactly
// one operation: a read of such a value names its write.
func observedRevisions(h *History) map[valueKey]int64 {
	writers := make(map[valueKey]int)
	for i := range h.Operations {
		op := &h.Operations[i]
		switch op.Kind {
		case KindPut, KindCAS:
			writers[valueKey{op.Key, op.Value}]++
		case KindTxn:
			for _, t := range op.Ops {
				if t.Kind == KindPut {
					writers[valueKey{t.Key, t.Value}]++
				}
			}
		}
	}
	seen := make(map[valueKey]int64)
	note := func(key, value string, mod int64) {
		vk := valueKey{key, value}
		if mod != 0 && writers[vk] == 1 {
			if _, ok := seen[vk]; !ok {
				seen[vk] = mod
			}
		}
	}
	for i := range h.Operations {
		op := &h.Operations[i]
		if op.Outcome != OutcomeOK {
			continue
		}
		if op.Kind == KindGet && op.Found {
			note(op.Key, op.Result, op.ModRevision)
		}
		for _, kv := range op.KVs {
			note(kv.Key, kv.Value, kv.ModRevision)
		}
	}
	return seen
}

// resolve learns the fate of an unknown write: from what the recorder
// learnt, else from a read that saw the unique value it wrote.
func resolve(i int, op *Operation, given map[int]Resolution, seen map[valueKey]int64) (rev int64, known bool) {
	if r, ok := given[i]; ok {
		return r.Revision, true
	}
	switch op.Kind {
	case KindPut, KindCAS:
		rev, known = seen[valueKey{op.Key, op.Value}]
	case KindTxn:
		for _, t := range op.Ops {
			if t.Kind == KindPut {
				if rev, known = seen[valueKey{t.Key, t.Value}]; known {
					break
				}
			}
		}
	}
	return rev, known
}

// creates reports whether c created a new revision (changed the store).
func (c *checked) creates() bool {
	if c.resolved {
		return true
	}
	return !c.unknown && changed(c.op)
}

// span is the store's revision just before and just after c took effect:
// rev-1 and rev for a write that created rev, rev and rev for anything else.
func (c *checked) span() (before, after int64) {
	if c.creates() {
		return c.rev - 1, c.rev
	}
	return c.rev, c.rev
}

// seenAt is an operation whose return shows that the store had reached a
// revision: it was served at (or created) rev.
type seenAt struct {
	rev int64
	c   *checked
}

// indexSeen lists the operations that show when each revision existed:
// every one with a recorded revision and a recorded return (not unknown or
// resolved writes, whose return is derived from these). Sorted by revision,
// with firstSeen[i] the earliest return among seen[i:].
func (p *prepared) indexSeen() {
	p.seen = p.seen[:0]
	for i := range p.ops {
		c := &p.ops[i]
		if c.rev == 0 || c.unknown || c.resolved {
			continue
		}
		_, after := c.span()
		p.seen = append(p.seen, seenAt{after, c})
	}
	sort.Slice(p.seen, func(a, b int) bool { return p.seen[a].rev < p.seen[b].rev })
	p.firstSeen = make([]*checked, len(p.seen)+1)
	for i := len(p.seen) - 1; i >= 0; i-- {
		p.firstSeen[i] = p.seen[i].c
		if next := p.firstSeen[i+1]; next != nil && next.ret < p.seen[i].c.ret {
			p.firstSeen[i] = next
		}
	}
}

// existedBy returns the operation that returned first having been served
// at rev or later: the store had reached rev by its return. It returns nil
// if none did.
func (p *prepared) existedBy(rev int64) *checked {
	j := sort.Search(len(p.seen), func(j int) bool { return p.seen[j].rev >= rev })
	return p.firstSeen[j]
}

// boundResolved sets each resolved write's return to the earliest return of
// an operation that was served at or after its revision: it had taken
// effect by then. Without one, it stays at infinity.
func (p *prepared) boundResolved() {
	for i := range p.ops {
		c := &p.ops[i]
		if c.unknown || c.resolved {
			c.ret = p.infinity
		}
	}
	p.indexSeen()
	for i := range p.ops {
		c := &p.ops[i]
		if !c.resolved {
			continue
		}
		if by := p.existedBy(c.rev); by != nil && by.ret >= c.op.Call {
			c.ret = by.ret
		}
		// A return before the call is a read that saw the write before it
		// was made: the revision pass reports it; leave this at infinity.
	}
}

// porcupineOperations turns the checked operations into porcupine's, one
// per key each covers, and counts the keys. Serializable reads are not
// among them: they may be stale, and only the revision pass checks them.
func (p *prepared) porcupineOperations() ([]porcupine.Operation, int) {
	clients := denseClients(p)
	var ops []porcupine.Operation
	keys := make(map[string]bool)
	for i := range p.ops {
		c := &p.ops[i]
		if c.op.Serializable {
			continue
		}
		for _, s := range p.steps(c) {
			keys[s.in.key] = true
			ops = append(ops, porcupine.Operation{
				ClientId: clients[c.op.Client],
				Input:    s.in,
				Call:     c.op.Call,
				Output:   s.out,
				Return:   c.ret,
				Metadata: metadata{index: c.index, client: c.op.Client, revision: c.rev},
			})
		}
	}
	return ops, len(keys)
}

type keyStep struct {
	in  *step
	out *outcome
}

// steps splits an operation into its steps, one per key it covers.
func (p *prepared) steps(c *checked) []keyStep {
	op := c.op
	base := outcome{unknown: c.unknown, revision: c.rev}
	one := func(in step, out outcome) keyStep { return keyStep{&in, &out} }
	switch op.Kind {
	case KindPut:
		return []keyStep{one(step{kind: KindPut, key: op.Key, value: op.Value}, base)}
	case KindGet:
		out := base
		out.found, out.value = op.Found, op.Result
		out.mod, out.create, out.version = op.ModRevision, op.CreateRevision, op.Version
		return []keyStep{one(step{kind: KindGet, key: op.Key}, out)}
	case KindRange:
		return p.rangeSteps(op, base)
	case KindDelete:
		return p.deleteSteps(c, op.Key, op.End, op.Deleted, base)
	case KindCAS:
		out := base
		out.succeeded = op.Succeeded || c.resolved
		return []keyStep{one(step{kind: KindCAS, key: op.Key, value: op.Value, expect: op.Expect, expectAbsent: op.ExpectAbsent}, out)}
	case KindTxn:
		var steps []keyStep
		for _, t := range op.Ops {
			if t.Kind == KindPut {
				steps = append(steps, one(step{kind: KindPut, key: t.Key, value: t.Value}, base))
				continue
			}
			steps = append(steps, p.deleteSteps(c, t.Key, t.End, t.Deleted, base)...)
		}
		return steps
	}
	panic("linearizability: unvalidated kind " + string(op.Kind))
}

// rangeSteps reads every key of the universe in the range: found with what
// the read returned, or absent.
func (p *prepared) rangeSteps(op *Operation, base outcome) []keyStep {
	var steps []keyStep
	p.eachKeyRead(op, func(k string, found bool, kv KV) bool {
		out := base
		if found {
			out.found, out.value = true, kv.Value
			out.mod, out.create, out.version = kv.ModRevision, kv.CreateRevision, kv.Version
		}
		steps = append(steps, keyStep{&step{kind: KindGet, key: k}, &out})
		return true
	})
	return steps
}

// eachKeyRead calls f for every key of the universe a range read covers,
// in order, with what the read returned for it (found false: absent),
// until f returns false.
func (p *prepared) eachKeyRead(op *Operation, f func(key string, found bool, kv KV) bool) {
	kvs := op.KVs
	for _, k := range p.keysIn(op.Key, op.End) {
		for len(kvs) > 0 && kvs[0].Key < k {
			kvs = kvs[1:]
		}
		var kv KV
		found := len(kvs) > 0 && kvs[0].Key == k
		if found {
			kv = kvs[0]
		}
		if !f(k, found, kv) {
			return
		}
	}
}

// deleteSteps deletes every key of the universe in [key, end). A single-key
// delete with a known count is exact; a range's share of a count that
// deleted something deletes each key if present (which keys, and how
// many, is the revision pass's to check); a count of 0 leaves every key
// absent.
func (p *prepared) deleteSteps(c *checked, key, end string, count int64, base outcome) []keyStep {
	var steps []keyStep
	for _, k := range p.keysIn(key, end) {
		in, out := step{kind: KindDelete, key: k}, base
		switch {
		case c.unknown:
		case c.resolved && end == "" && c.op.Kind == KindDelete:
			out.deleted = 1 // it took effect, so it deleted its one key
		case c.resolved, end != "" && count > 0:
			in.anyDeleted = true
		default:
			out.deleted = count
		}
		steps = append(steps, keyStep{&in, &out})
	}
	return steps
}

// keysIn returns the universe's keys in a range.
func (p *prepared) keysIn(key, end string) []string {
	if end == "" {
		return []string{key}
	}
	i := sort.SearchStrings(p.universe, key)
	j := i
	for j < len(p.universe) && InRange(p.universe[j], key, end) {
		j++
	}
	return p.universe[i:j]
}

// denseClients numbers the client ids of the checked operations 0, 1, 2,
// ... in order. Porcupine's visualisation draws a row for every id up to
// the largest, and a recorder that hands out a fresh id after each unknown
// outcome leaves gaps (ids whose only operations were dropped).
func denseClients(p *prepared) map[int]int {
	ids := make([]int, 0, len(p.ops))
	seen := make(map[int]bool)
	for _, c := range p.ops {
		id := c.op.Client
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	dense := make(map[int]int, len(ids))
	for n, id := range ids {
		dense[id] = n
	}
	return dense
}
