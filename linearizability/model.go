package linearizability

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// register is the state of one key: absent, or present with a value and
// etcd's revisions. A revision or version of 0 is unknown: an unknown write
// whose revision the check could not learn left it so, and the first read
// that shows it fills it in.
type register struct {
	exists  bool
	value   string
	mod     int64 // when exists: the key's mod revision
	create  int64 // when exists: its create revision
	version int64 // when exists: writes since it was created
	// last is a lower bound of the revision of the key's last write (a put,
	// or the delete that made it absent), and that revision exactly when it
	// is known. Every later write to the key has a greater revision, and
	// every read's header revision is at least this.
	last int64
}

// registers is the set of states one key may be in. It has one element until
// an unknown write forks it into "applied" and "not applied"; a later ok
// operation whose result only some of them explain filters it again. This is
// porcupine's NondeterministicModel power-set construction, written out for
// one register so that the common case (one state) costs no interface calls
// and no allocation on reads. A registers value is never modified once built:
// porcupine keeps old states on its backtracking stack.
type registers []register

// step is one key's share of an operation: porcupine's Operation.Input. A
// multi-key operation (a range read, a range delete, a txn) becomes one step
// per key it covers, each checked in that key's partition; what ties them
// together (one revision for all) is the revision pass's to check.
type step struct {
	kind         Kind // put, get, delete or cas
	key          string
	value        string // put, cas
	expect       string // cas
	expectAbsent bool   // cas
	// anyDeleted: a delete that covered this key among others (a range, a
	// txn's delete, or one whose count is not known); it deletes the key
	// if present, and the count is the revision pass's to check.
	anyDeleted bool
	budget     *budget
}

// outcome is what one key's step reported: porcupine's Operation.Output.
type outcome struct {
	// unknown: the operation may or may not have taken effect, at an unknown
	// revision. A write whose outcome was unknown but whose revision was
	// learnt (resolved) is not unknown: it took effect at revision.
	unknown bool
	// revision is the header revision: the revision a write created, or the
	// one a read or a write that changed nothing was served at. 0: not
	// recorded.
	revision int64
	found    bool   // get
	value    string // get
	mod      int64  // get, when found; 0: not recorded
	create   int64
	version  int64
	deleted  int64 // delete, unless anyDeleted
	// succeeded: a cas's compare held and it wrote.
	succeeded bool
}

// metadata ties a porcupine operation back to the recorded history, for the
// visualisation.
type metadata struct {
	index    int // in History.Operations
	client   int // as recorded, before renumbering
	revision int64
}

// holds reports whether a cas's compare holds on s.
func (in *step) holds(s register) bool {
	if in.expectAbsent {
		return !s.exists
	}
	return s.exists && s.value == in.expect
}

// written is s after a put of value at revision rev (0: unknown).
func written(s register, value string, rev int64) register {
	next := register{exists: true, value: value, mod: rev, last: rev}
	if rev == 0 {
		next.last = s.last + 1 // later than the last write, by at least one
	}
	switch {
	case !s.exists:
		next.create, next.version = rev, 1
	case s.version != 0:
		next.create, next.version = s.create, s.version+1
	default:
		next.create = s.create
	}
	return next
}

// deleted is s after a delete that removed it at revision rev (0: unknown).
func deleted(s register, rev int64) register {
	if rev == 0 {
		return register{last: s.last + 1}
	}
	return register{last: rev}
}

// applyUnknown is s after in took effect at an unknown revision.
func applyUnknown(s register, in *step) register {
	switch {
	case in.kind == KindPut, in.kind == KindCAS && in.holds(s):
		return written(s, in.value, 0)
	case in.kind == KindDelete && s.exists:
		return deleted(s, 0)
	}
	return s
}

// fresh reports whether a write's revision can follow s: every write to a
// key has a greater revision than the one before. Revision 0 (unrecorded)
// checks nothing.
func fresh(s register, rev int64) bool { return rev == 0 || rev > s.last }

// servedAfter reports whether a header revision can be one at which s was
// the key's state: no earlier than its last write.
func servedAfter(s register, rev int64) bool { return rev == 0 || rev >= s.last }

// apply is the sequential specification with revisions: it returns the state
// after a step that reported out, and false when no execution from s could
// have reported it.
func apply(s register, in *step, out *outcome) (register, bool) {
	switch in.kind {
	case KindPut:
		return written(s, in.value, out.revision), fresh(s, out.revision)
	case KindGet:
		return read(s, out)
	case KindDelete:
		return applyDelete(s, in, out)
	case KindCAS:
		if !out.succeeded {
			return s, !in.holds(s) && servedAfter(s, out.revision)
		}
		return written(s, in.value, out.revision), in.holds(s) && fresh(s, out.revision)
	default:
		panic(fmt.Sprintf("linearizability: unvalidated kind %q reached the model", in.kind))
	}
}

func applyDelete(s register, in *step, out *outcome) (register, bool) {
	switch {
	case in.anyDeleted && s.exists:
		return deleted(s, out.revision), fresh(s, out.revision)
	case in.anyDeleted:
		// Nothing here to delete. The delete changed another key, at a
		// revision newer than every write before it.
		return s, fresh(s, out.revision)
	case out.deleted == 1:
		return deleted(s, out.revision), s.exists && fresh(s, out.revision)
	default:
		return s, !s.exists && servedAfter(s, out.revision)
	}
}

// read checks a get's result against s and fills in what s did not know.
func read(s register, out *outcome) (register, bool) {
	if out.found != s.exists || !servedAfter(s, out.revision) {
		return s, false
	}
	if !s.exists {
		return s, true
	}
	if out.value != s.value {
		return s, false
	}
	next := s
	ok := learn(&next.mod, out.mod) && learn(&next.create, out.create) && learn(&next.version, out.version)
	if next.mod != 0 && next.mod < s.last || out.revision != 0 && next.mod > out.revision {
		ok = false
	}
	if next.mod != 0 {
		next.last = next.mod
	}
	return next, ok
}

// learn checks a read value against a known one, or fills in an unknown one
// (0 on either side is unknown).
func learn(known *int64, seen int64) bool {
	switch {
	case seen == 0:
		return true
	case *known == 0:
		*known = seen
		return true
	}
	return *known == seen
}

// stepSet steps every state in a set. A known outcome keeps the states that
// explain it; an unknown one keeps every state both as it was and as the
// operation would leave it. It returns nil when no state explains the
// outcome.
func stepSet(states registers, in *step, out *outcome) registers {
	if out.unknown {
		next := make(registers, 0, 2*len(states))
		for _, s := range states {
			next = next.with(s).with(applyUnknown(s, in))
		}
		return next
	}
	var next registers
	unchanged := true
	for i, s := range states {
		after, ok := apply(s, in, out)
		if !ok || after != s {
			unchanged = false
		}
		if !ok {
			continue
		}
		if next == nil {
			next = make(registers, 0, len(states)-i)
		}
		next = next.with(after)
	}
	if unchanged {
		// A read every state explains as it is: share the set, allocate
		// nothing.
		return states
	}
	return next
}

// with returns rs plus s, unless s is already in it. It appends, so call it
// only on a set this step built.
func (rs registers) with(s register) registers {
	if rs.contains(s) {
		return rs
	}
	return append(rs, s)
}

func (rs registers) contains(s register) bool {
	for _, r := range rs {
		if r == s {
			return true
		}
	}
	return false
}

// equal reports set equality; both sides have no duplicates.
func (rs registers) equal(other registers) bool {
	if len(rs) != len(other) {
		return false
	}
	for _, r := range rs {
		if !other.contains(r) {
			return false
		}
	}
	return true
}

// hash is order independent (a sum of FNV-1a hashes), as sets need.
func (rs registers) hash() uint64 {
	var sum uint64
	for _, r := range rs {
		const offset, prime = 14695981039346656037, 1099511628211
		h := uint64(offset)
		if r.exists {
			h = (h ^ 1) * prime
		}
		for i := 0; i < len(r.value); i++ {
			h = (h ^ uint64(r.value[i])) * prime
		}
		for _, n := range [...]int64{r.mod, r.create, r.version, r.last} {
			h = (h ^ uint64(n)) * prime
		}
		sum += h
	}
	return sum
}

// newModel returns the per-key porcupine model. Its Partition splits a
// history by key, in key order, so the visualisation lists keys the same way
// every time.
func newModel() porcupine.Model {
	return porcupine.Model{
		Partition: partitionByKey,
		Init:      func() any { return registers{{}} },
		Step: func(state, in, out any) (bool, any) {
			yield()
			st, states := in.(*step), state.(registers)
			if st.budget != nil && st.budget.over {
				return false, state // over budget: end the search; Check reports it undecided
			}
			next := stepSet(states, st, out.(*outcome))
			if st.budget != nil && len(next) > 0 {
				built := cap(next)
				if len(states) > 0 && &next[0] == &states[0] {
					built = 0 // shared, not built
				}
				if !st.budget.spend(built) {
					return false, state
				}
			}
			return len(next) > 0, next
		},
		Equal: func(a, b any) bool { return a.(registers).equal(b.(registers)) },
		Hash:  func(state any) uint64 { return state.(registers).hash() },
		DescribeOperation: func(in, out any) string {
			return describeStep(in.(*step), out.(*outcome))
		},
		DescribeState: func(state any) string { return describeState(state.(registers)) },
		DescribeOperationMetadata: func(m any) string {
			md := m.(metadata)
			s := "history[" + strconv.Itoa(md.index) + "], client " + strconv.Itoa(md.client)
			if md.revision != 0 {
				s += ", revision " + strconv.FormatInt(md.revision, 10)
			}
			return s
		},
	}
}

// partitionByKey groups operations by key, keys in order.
func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := make(map[string][]porcupine.Operation)
	for _, op := range ops {
		k := op.Input.(*step).key
		byKey[k] = append(byKey[k], op)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		parts[i] = byKey[k]
	}
	return parts
}

// describeStep renders a step for the visualisation, as in
// `put(k3, "c1-17") @12`, `get(k3) -> "c1-17" mod 12 v2 @14`,
// `cas(k3, "a"->"b") -> false @14`, `unknown delete(k3)`.
func describeStep(in *step, out *outcome) string {
	var b strings.Builder
	if out.unknown {
		b.WriteString("unknown ")
	}
	b.WriteString(string(in.kind))
	b.WriteByte('(')
	b.WriteString(describeKey(in.key))
	switch in.kind {
	case KindPut:
		b.WriteString(", " + strconv.Quote(in.value))
	case KindCAS:
		expect := strconv.Quote(in.expect)
		if in.expectAbsent {
			expect = "absent"
		}
		b.WriteString(", " + expect + "->" + strconv.Quote(in.value))
	}
	b.WriteByte(')')
	if out.unknown {
		return b.String()
	}
	switch {
	case in.kind == KindGet:
		b.WriteString(" -> " + describeRegister(register{exists: out.found, value: out.value,
			mod: out.mod, create: out.create, version: out.version}))
	case in.kind == KindDelete && in.anyDeleted:
		b.WriteString(" -> 0 or 1")
	case in.kind == KindDelete:
		b.WriteString(" -> " + strconv.FormatInt(out.deleted, 10))
	case in.kind == KindCAS:
		b.WriteString(" -> " + strconv.FormatBool(out.succeeded))
	}
	if out.revision != 0 {
		b.WriteString(" @" + strconv.FormatInt(out.revision, 10))
	}
	return b.String()
}

// describeState renders the set of states a key may be in, sorted, as in
// `"c1-17" mod 12 create 3 v4` or `absent | "c1-17" mod ?`.
func describeState(rs registers) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = describeRegister(r)
	}
	sort.Strings(parts)
	return strings.Join(parts, " | ")
}

func describeRegister(r register) string {
	if !r.exists {
		return "absent"
	}
	rev := func(n int64) string {
		if n == 0 {
			return "?"
		}
		return strconv.FormatInt(n, 10)
	}
	return strconv.Quote(r.value) + " mod " + rev(r.mod) + " create " + rev(r.create) + " v" + rev(r.version)
}

// describeKey leaves a plain key bare and quotes anything else.
func describeKey(k string) string {
	for _, c := range k {
		plain := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.ContainsRune("/_-.:", c)
		if !plain {
			return strconv.Quote(k)
		}
	}
	return k
}
