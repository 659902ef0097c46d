package linearizability

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// register is the state of one key: absent, or present with a value.
type register struct {
	exists bool
	value  string
}

// registers is the set of states one key may be in. It has one element until
// an unknown write forks it into "applied" and "not applied"; a later ok
// operation whose result only some of them explain filters it again. This is
// porcupine's NondeterministicModel power-set construction, written out for
// one register so that the common case (one state) costs no interface calls
// and no allocation on reads. A registers value is never modified once built:
// porcupine keeps old states on its backtracking stack.
type registers []register

// input is what a client asked for; porcupine's Operation.Input.
type input struct {
	kind         Kind
	key          string
	value        string
	expect       string
	expectAbsent bool
}

// output is what the client learned; porcupine's Operation.Output.
type output struct {
	unknown   bool
	found     bool
	result    string
	deleted   int64
	succeeded bool
}

// metadata ties a porcupine operation back to the recorded history, for the
// visualisation.
type metadata struct {
	index    int // in History.Operations
	client   int // as recorded, before renumbering
	revision int64
}

// step applies in to one state and returns the new state and the output an
// ok operation must have reported. It is the sequential specification.
func step(s register, in *input) (register, output) {
	switch in.kind {
	case KindPut:
		return register{exists: true, value: in.value}, output{}
	case KindGet:
		return s, output{found: s.exists, result: s.value}
	case KindDelete:
		if !s.exists {
			return s, output{deleted: 0}
		}
		return register{}, output{deleted: 1}
	case KindCAS:
		holds := s.exists && s.value == in.expect
		if in.expectAbsent {
			holds = !s.exists
		}
		if !holds {
			return s, output{succeeded: false}
		}
		return register{exists: true, value: in.value}, output{succeeded: true}
	default:
		panic(fmt.Sprintf("linearizability: unvalidated kind %q reached the model", in.kind))
	}
}

// stepSet steps every state in a set. A known outcome keeps the states that
// explain it; an unknown one keeps every state both as it was and as the
// operation would leave it. It returns nil when no state explains the
// outcome.
func stepSet(states registers, in *input, out *output) registers {
	if out.unknown {
		next := make(registers, 0, 2*len(states))
		for _, s := range states {
			applied, _ := step(s, in)
			next = next.with(s).with(applied)
		}
		return next
	}
	var next registers
	unchanged := true
	for i, s := range states {
		after, want := step(s, in)
		if want != *out || after != s {
			unchanged = false
		}
		if want != *out {
			continue
		}
		if next == nil {
			next = make(registers, 0, len(states)-i)
		}
		next = next.with(after)
	}
	if unchanged {
		// A read every state explains: share the set, allocate nothing.
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
			next := stepSet(state.(registers), in.(*input), out.(*output))
			return len(next) > 0, next
		},
		Equal: func(a, b any) bool { return a.(registers).equal(b.(registers)) },
		Hash:  func(state any) uint64 { return state.(registers).hash() },
		DescribeOperation: func(in, out any) string {
			return describeOperation(in.(*input), out.(*output))
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
		k := op.Input.(*input).key
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

// describeOperation renders an operation for the visualisation, as in
// `put(k3, "c1-17")`, `get(k3) -> "c1-17"`, `cas(k3, "a"->"b") -> false`,
// `unknown delete(k3)`.
func describeOperation(in *input, out *output) string {
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
	switch in.kind {
	case KindGet:
		b.WriteString(" -> " + describeRegister(register{exists: out.found, value: out.result}))
	case KindDelete:
		b.WriteString(" -> " + strconv.FormatInt(out.deleted, 10))
	case KindCAS:
		b.WriteString(" -> " + strconv.FormatBool(out.succeeded))
	}
	return b.String()
}

// describeState renders the set of states a key may be in, sorted, as in
// `"c1-17"` or `absent | "c1-17"`.
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
	return strconv.Quote(r.value)
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
