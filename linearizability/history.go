package linearizability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Kind names a client operation.
type Kind string

const (
	KindPut    Kind = "put"
	KindGet    Kind = "get"
	KindDelete Kind = "delete"
	KindCAS    Kind = "cas"
)

// Outcome is what the client learned about an operation.
type Outcome string

const (
	// OutcomeOK: the operation took effect once, between Call and Return,
	// and its results are recorded.
	OutcomeOK Outcome = "ok"
	// OutcomeFailed: the operation definitely had no effect (the server
	// refused it before proposing it, for example).
	OutcomeFailed Outcome = "failed"
	// OutcomeUnknown: the operation may have taken effect at any time after
	// Call, or never (a timeout, a lost connection). Never guess otherwise.
	OutcomeUnknown Outcome = "unknown"
)

// OperationsMax bounds the operations in one History. Validate and ReadJSON
// reject a longer one: porcupine would not finish on it anyway, and a file
// that long is more likely a runaway recorder.
const OperationsMax = 1 << 22

// Operation is one client operation, as recorded by whoever ran it. Times are
// nanoseconds on one clock (virtual in the simulator).
type Operation struct {
	// Client is porcupine's client id. A client takes a fresh id after an
	// unknown outcome, so that one id's operations never overlap: the
	// unknown operation returns "at infinity" and keeps its id busy.
	Client       int     `json:"client"`
	Kind         Kind    `json:"kind"`
	Key          string  `json:"key"`
	Value        string  `json:"value,omitempty"`         // put: the value written; cas: the new value
	Expect       string  `json:"expect,omitempty"`        // cas: the value compared against
	ExpectAbsent bool    `json:"expect_absent,omitempty"` // cas: succeed only if the key does not exist (etcd: compare create_revision == 0)
	Call         int64   `json:"call"`
	Return       int64   `json:"return"` // ignored when Outcome is unknown
	Outcome      Outcome `json:"outcome"`

	// Results, meaningful when Outcome is ok.
	Found     bool   `json:"found,omitempty"`     // get: the key existed
	Result    string `json:"result,omitempty"`    // get: the value read
	Deleted   int64  `json:"deleted,omitempty"`   // delete: keys deleted (0 or 1)
	Succeeded bool   `json:"succeeded,omitempty"` // cas: the compare held and the value was written
	Revision  int64  `json:"revision,omitempty"`  // header revision (informational for now)

	// Error is the error the client saw, when Outcome is failed or unknown.
	Error string `json:"error,omitempty"`
}

// History is every operation of one run, in any order.
type History struct {
	Operations []Operation `json:"operations"`
}

// Add appends op. It does not validate: Validate, ReadJSON and Check do.
func (h *History) Add(op Operation) {
	h.Operations = append(h.Operations, op)
}

// Validate reports the first operation that breaks the format, naming its
// index and field. Beyond each operation's own fields it checks the client-id
// contract: one client id's operations do not overlap (a call at the very
// time of the previous return is allowed), and an unknown operation is the
// last of its client id.
func (h History) Validate() error {
	if len(h.Operations) > OperationsMax {
		return fmt.Errorf("history has %d operations, more than the limit of %d", len(h.Operations), OperationsMax)
	}
	for i := range h.Operations {
		if err := h.Operations[i].validate(); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return h.validateClients()
}

// validate checks one operation on its own.
func (op *Operation) validate() error {
	switch op.Kind {
	case KindPut, KindGet, KindDelete, KindCAS:
	default:
		return fmt.Errorf("kind: %q is not one of put, get, delete, cas", op.Kind)
	}
	switch op.Outcome {
	case OutcomeOK, OutcomeFailed, OutcomeUnknown:
	default:
		return fmt.Errorf("outcome: %q is not one of ok, failed, unknown", op.Outcome)
	}
	if op.Client < 0 {
		return fmt.Errorf("client: %d is negative", op.Client)
	}
	if op.Key == "" {
		return errors.New("key: empty")
	}
	if op.Outcome != OutcomeUnknown && op.Return < op.Call {
		return fmt.Errorf("return: %d is before call %d", op.Return, op.Call)
	}
	if err := op.validateArguments(); err != nil {
		return err
	}
	return op.validateResults()
}

// validateArguments rejects an argument the kind does not take, so that a
// recorder that mixes them up is caught here rather than checked wrongly.
func (op *Operation) validateArguments() error {
	if op.Value != "" && op.Kind != KindPut && op.Kind != KindCAS {
		return fmt.Errorf("value: set on a %s", op.Kind)
	}
	if op.Kind != KindCAS {
		if op.Expect != "" {
			return fmt.Errorf("expect: set on a %s", op.Kind)
		}
		if op.ExpectAbsent {
			return fmt.Errorf("expect_absent: set on a %s", op.Kind)
		}
	}
	if op.ExpectAbsent && op.Expect != "" {
		return errors.New("expect: set together with expect_absent")
	}
	return nil
}

// validateResults rejects a result on an operation that has none: results
// exist only for ok outcomes, and each belongs to one kind.
func (op *Operation) validateResults() error {
	type result struct {
		name string
		set  bool
		kind Kind
	}
	results := [...]result{
		{"found", op.Found, KindGet},
		{"result", op.Result != "", KindGet},
		{"deleted", op.Deleted != 0, KindDelete},
		{"succeeded", op.Succeeded, KindCAS},
		{"revision", op.Revision != 0, ""},
	}
	for _, r := range results {
		if !r.set {
			continue
		}
		if op.Outcome != OutcomeOK {
			return fmt.Errorf("%s: set on an operation whose outcome is %s", r.name, op.Outcome)
		}
		if r.kind != "" && r.kind != op.Kind {
			return fmt.Errorf("%s: set on a %s", r.name, op.Kind)
		}
	}
	if op.Result != "" && !op.Found {
		return errors.New("result: set but found is false")
	}
	if op.Deleted < 0 || op.Deleted > 1 {
		return fmt.Errorf("deleted: %d is not 0 or 1 (one key per operation)", op.Deleted)
	}
	if op.Revision < 0 {
		return fmt.Errorf("revision: %d is negative", op.Revision)
	}
	return nil
}

// validateClients checks that each client id's operations are sequential
// and that an unknown one comes last. Porcupine does not need this, but its
// visualisation draws one row per client id, and a recorder that reuses an
// id after an unknown outcome has lost track of its clients.
func (h History) validateClients() error {
	byClient := make(map[int][]int)
	for i, op := range h.Operations {
		byClient[op.Client] = append(byClient[op.Client], i)
	}
	clients := make([]int, 0, len(byClient))
	for c := range byClient {
		clients = append(clients, c)
	}
	sort.Ints(clients)
	for _, c := range clients {
		indexes := byClient[c]
		sort.SliceStable(indexes, func(a, b int) bool {
			return h.Operations[indexes[a]].Call < h.Operations[indexes[b]].Call
		})
		for j := 1; j < len(indexes); j++ {
			prev, cur := &h.Operations[indexes[j-1]], &h.Operations[indexes[j]]
			if prev.Outcome == OutcomeUnknown {
				return fmt.Errorf("operation %d: client: %d already had an unknown outcome (operation %d); a client takes a fresh id after one",
					indexes[j], c, indexes[j-1])
			}
			if cur.Call < prev.Return {
				return fmt.Errorf("operation %d: call: %d overlaps operation %d of client %d, which returned at %d",
					indexes[j], cur.Call, indexes[j-1], c, prev.Return)
			}
		}
	}
	return nil
}

// WriteJSON writes h as one JSON object with one operation per line, so that
// a history file diffs and greps well. It does not validate: a broken
// history is still worth saving, and ReadJSON will say what is wrong with it.
func WriteJSON(w io.Writer, h History) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"operations":[`)
	for i := range h.Operations {
		line, err := json.Marshal(&h.Operations[i])
		if err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		bw.Write(line)
	}
	bw.WriteString("\n]}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// ReadJSON reads a history written by WriteJSON (or by anything else that
// follows the format) and validates it. Unknown fields are an error, so a
// misspelt field is not silently read as its zero value.
func ReadJSON(r io.Reader) (History, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return History{}, fmt.Errorf("read history: %w", err)
	}
	// Decode the operations one by one, so that a type error names its
	// operation's index and not only its field.
	var raw struct {
		Operations []json.RawMessage `json:"operations"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return History{}, fmt.Errorf("decode history: %w", err)
	}
	if len(raw.Operations) > OperationsMax {
		return History{}, fmt.Errorf("history has %d operations, more than the limit of %d", len(raw.Operations), OperationsMax)
	}
	h := History{Operations: make([]Operation, len(raw.Operations))}
	for i, m := range raw.Operations {
		if err := decodeStrict(m, &h.Operations[i]); err != nil {
			return History{}, fmt.Errorf("decode history: operation %d: %w", i, err)
		}
	}
	if err := h.Validate(); err != nil {
		return History{}, fmt.Errorf("invalid history: %w", err)
	}
	return h, nil
}

// decodeStrict decodes exactly one JSON value from data into v, refusing
// unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return errors.New("data after the end of the value")
	}
	return nil
}
