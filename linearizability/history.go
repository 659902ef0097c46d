package linearizability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// Kind names a client operation.
type Kind string

const (
	// KindPut writes Value to Key (etcd's Put).
	KindPut Kind = "put"
	// KindGet reads Key (etcd's Range of one key).
	KindGet Kind = "get"
	// KindDelete deletes Key, or every key in [Key, End) when End is set
	// (etcd's DeleteRange).
	KindDelete Kind = "delete"
	// KindCAS writes Value to Key if it holds Expect, or if it is absent
	// with ExpectAbsent (etcd's Txn with one compare and one put).
	KindCAS Kind = "cas"
	// KindRange reads every key in [Key, End) at one revision (etcd's Range
	// with a range_end; a prefix read is a range).
	KindRange Kind = "range"
	// KindTxn applies Ops, several puts and deletes on distinct keys, at
	// one revision (etcd's Txn with no compares).
	KindTxn Kind = "txn"
)

// EndAll as End means every key from Key on, as etcd's range_end "\x00".
const EndAll = "\x00"

// PrefixEnd returns the End that makes a range or delete cover every key
// with the given prefix, as etcd's clientv3.GetPrefixRangeEnd does.
func PrefixEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	return EndAll
}

// InRange reports whether key is in the range that key and end describe,
// with etcd's meaning: end "" is key alone, EndAll is every key from key on.
func InRange(k, key, end string) bool {
	switch end {
	case "":
		return k == key
	case EndAll:
		return k >= key
	}
	return k >= key && k < end
}

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
// reject a longer one, and so should a recorder's configuration (the
// simulator refuses a scenario whose limits allow more): porcupine would not
// finish on it anyway, and a file that long is more likely a runaway
// recorder.
const OperationsMax = 1 << 22

// txnOpsMax bounds the operations of one txn, as etcd's --max-txn-ops.
const txnOpsMax = 128

// Operation is one client operation, as recorded by whoever ran it. Times are
// nanoseconds on one clock (virtual in the simulator).
//
// Revisions are etcd's: the header revision is the store's revision when the
// operation was served (for a write that changed something, the revision it
// created), and every key read carries its mod revision, create revision and
// version. A revision of 0 means "not recorded", and the checks that need it
// skip the operation; recorders in this project record every one.
type Operation struct {
	// Client is porcupine's client id. A client takes a fresh id after an
	// unknown outcome, so that one id's operations never overlap: the
	// unknown operation returns "at infinity" and keeps its id busy.
	Client       int     `json:"client"`
	Kind         Kind    `json:"kind"`
	Key          string  `json:"key"`
	End          string  `json:"end,omitempty"`           // range, delete: the range [Key, End), etcd's range_end; "" is Key alone
	Value        string  `json:"value,omitempty"`         // put: the value written; cas: the new value
	Expect       string  `json:"expect,omitempty"`        // cas: the value compared against
	ExpectAbsent bool    `json:"expect_absent,omitempty"` // cas: succeed only if the key does not exist (etcd: compare create_revision == 0)
	Ops          []TxnOp `json:"ops,omitempty"`           // txn: its writes, on distinct keys
	Serializable bool    `json:"serializable,omitempty"`  // get, range: served from the member's local state (may be stale)
	Call         int64   `json:"call"`
	Return       int64   `json:"return"` // ignored when Outcome is unknown
	Outcome      Outcome `json:"outcome"`

	// Results, meaningful when Outcome is ok.
	Found          bool   `json:"found,omitempty"`           // get: the key existed
	Result         string `json:"result,omitempty"`          // get: the value read
	ModRevision    int64  `json:"mod_revision,omitempty"`    // get, when found: the key's
	CreateRevision int64  `json:"create_revision,omitempty"` // get, when found
	Version        int64  `json:"version,omitempty"`         // get, when found
	KVs            []KV   `json:"kvs,omitempty"`             // range: every key found, in key order
	Deleted        int64  `json:"deleted,omitempty"`         // delete: keys deleted
	Succeeded      bool   `json:"succeeded,omitempty"`       // cas: the compare held and the value was written
	Revision       int64  `json:"revision,omitempty"`        // the response header's revision

	// Error is the error the client saw, when Outcome is failed or unknown.
	Error string `json:"error,omitempty"`
}

// TxnOp is one write of a txn.
type TxnOp struct {
	Kind  Kind   `json:"kind"` // put or delete
	Key   string `json:"key"`
	End   string `json:"end,omitempty"`   // delete: as Operation.End
	Value string `json:"value,omitempty"` // put
	// Deleted is a delete's result (keys deleted), meaningful when the
	// txn's outcome is ok.
	Deleted int64 `json:"deleted,omitempty"`
}

// KV is one key a range read found, with etcd's revisions.
type KV struct {
	Key            string `json:"key"`
	Value          string `json:"value"`
	ModRevision    int64  `json:"mod_revision,omitempty"`
	CreateRevision int64  `json:"create_revision,omitempty"`
	Version        int64  `json:"version,omitempty"`
}

// IsWrite reports whether the operation may change the store.
func (op *Operation) IsWrite() bool {
	return op.Kind != KindGet && op.Kind != KindRange
}

// History is every operation of one run, in any order, and what its
// watchers saw (see watch.go).
type History struct {
	Operations []Operation `json:"operations"`
	// Compactions are the compactions the cluster was asked for, and
	// Watchers the watching clients' streams: CheckWatches checks them
	// against the operations' revisions; Check ignores them.
	Compactions []Compaction `json:"compactions,omitempty"`
	Watchers    []Watcher    `json:"watchers,omitempty"`
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
	if err := h.validateClients(); err != nil {
		return err
	}
	return h.validateWatchers()
}

// validate checks one operation on its own.
func (op *Operation) validate() error {
	switch op.Kind {
	case KindPut, KindGet, KindDelete, KindCAS, KindRange, KindTxn:
	default:
		return fmt.Errorf("kind: %q is not one of put, get, delete, cas, range, txn", op.Kind)
	}
	switch op.Outcome {
	case OutcomeOK, OutcomeFailed, OutcomeUnknown:
	default:
		return fmt.Errorf("outcome: %q is not one of ok, failed, unknown", op.Outcome)
	}
	if op.Client < 0 {
		return fmt.Errorf("client: %d is negative", op.Client)
	}
	if op.Key == "" && op.Kind != KindTxn {
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
	switch {
	case op.End != "" && op.Kind != KindRange && op.Kind != KindDelete:
		return fmt.Errorf("end: set on a %s", op.Kind)
	case op.Kind == KindRange && op.End == "":
		return errors.New("end: a range needs one (a single key is a get)")
	case op.End != "" && op.End != EndAll && op.End <= op.Key:
		return fmt.Errorf("end: %q is not after key %q", op.End, op.Key)
	case op.Serializable && op.IsWrite():
		return fmt.Errorf("serializable: set on a %s", op.Kind)
	case len(op.Ops) > 0 && op.Kind != KindTxn:
		return fmt.Errorf("ops: set on a %s", op.Kind)
	case op.Kind == KindTxn:
		return op.validateTxn()
	}
	return nil
}

// validateTxn checks a txn's writes: at least one, at most txnOpsMax, and no
// key written twice (etcd refuses a txn that puts or deletes one key twice).
func (op *Operation) validateTxn() error {
	if op.Key != "" {
		return errors.New("key: set on a txn (its ops name their keys)")
	}
	if len(op.Ops) == 0 || len(op.Ops) > txnOpsMax {
		return fmt.Errorf("ops: a txn has %d, not 1 to %d", len(op.Ops), txnOpsMax)
	}
	for i, t := range op.Ops {
		switch {
		case t.Kind != KindPut && t.Kind != KindDelete:
			return fmt.Errorf("ops[%d].kind: %q is not put or delete", i, t.Kind)
		case t.Key == "":
			return fmt.Errorf("ops[%d].key: empty", i)
		case t.Kind == KindPut && t.End != "":
			return fmt.Errorf("ops[%d].end: set on a put", i)
		case t.Kind == KindDelete && t.Value != "":
			return fmt.Errorf("ops[%d].value: set on a delete", i)
		case t.End != "" && t.End != EndAll && t.End <= t.Key:
			return fmt.Errorf("ops[%d].end: %q is not after key %q", i, t.End, t.Key)
		case t.Deleted < 0 || t.Kind != KindDelete && t.Deleted != 0:
			return fmt.Errorf("ops[%d].deleted: %d on a %s", i, t.Deleted, t.Kind)
		case t.Deleted > 1 && t.End == "":
			return fmt.Errorf("ops[%d].deleted: %d is not 0 or 1 (one key, no end)", i, t.Deleted)
		case t.Deleted != 0 && op.Outcome != OutcomeOK:
			return fmt.Errorf("ops[%d].deleted: set on an operation whose outcome is %s", i, op.Outcome)
		}
		for j := range i {
			if overlaps(op.Ops[j], t) {
				return fmt.Errorf("ops[%d]: key %q overlaps ops[%d] (etcd: duplicate key given in txn request)", i, t.Key, j)
			}
		}
	}
	return nil
}

// overlaps reports whether two txn writes touch a common key.
func overlaps(a, b TxnOp) bool {
	if a.End == "" && b.End == "" {
		return a.Key == b.Key
	}
	if a.End == "" {
		return InRange(a.Key, b.Key, b.End)
	}
	if b.End == "" {
		return InRange(b.Key, a.Key, a.End)
	}
	return InRange(a.Key, b.Key, b.End) || InRange(b.Key, a.Key, a.End)
}

// validateResults rejects a result on an operation that has none: results
// exist only for ok outcomes, and each belongs to one kind.
func (op *Operation) validateResults() error {
	type result struct {
		name  string
		set   bool
		kinds []Kind
	}
	results := [...]result{
		{"found", op.Found, []Kind{KindGet}},
		{"result", op.Result != "", []Kind{KindGet}},
		{"mod_revision", op.ModRevision != 0, []Kind{KindGet}},
		{"create_revision", op.CreateRevision != 0, []Kind{KindGet}},
		{"version", op.Version != 0, []Kind{KindGet}},
		{"kvs", len(op.KVs) != 0, []Kind{KindRange}},
		{"deleted", op.Deleted != 0, []Kind{KindDelete}},
		{"succeeded", op.Succeeded, []Kind{KindCAS}},
		{"revision", op.Revision != 0, nil},
	}
	for _, r := range results {
		if !r.set {
			continue
		}
		if op.Outcome != OutcomeOK {
			return fmt.Errorf("%s: set on an operation whose outcome is %s", r.name, op.Outcome)
		}
		if r.kinds != nil && !slices.Contains(r.kinds, op.Kind) {
			return fmt.Errorf("%s: set on a %s", r.name, op.Kind)
		}
	}
	switch {
	case op.Result != "" && !op.Found:
		return errors.New("result: set but found is false")
	case (op.ModRevision != 0 || op.CreateRevision != 0 || op.Version != 0) && !op.Found:
		return errors.New("mod_revision, create_revision, version: set but found is false")
	case op.Deleted < 0:
		return fmt.Errorf("deleted: %d is negative", op.Deleted)
	case op.Deleted > 1 && op.End == "":
		return fmt.Errorf("deleted: %d is not 0 or 1 (one key, no end)", op.Deleted)
	}
	for _, f := range [...]struct {
		name string
		n    int64
	}{{"revision", op.Revision}, {"mod_revision", op.ModRevision}, {"create_revision", op.CreateRevision}, {"version", op.Version}} {
		if f.n < 0 {
			return fmt.Errorf("%s: %d is negative", f.name, f.n)
		}
	}
	if err := validateRevisions(op.ModRevision, op.CreateRevision, op.Version, op.Revision); err != nil {
		return err
	}
	for i, kv := range op.KVs {
		switch {
		case !InRange(kv.Key, op.Key, op.End):
			return fmt.Errorf("kvs[%d]: key %q is outside the range read", i, kv.Key)
		case i > 0 && kv.Key <= op.KVs[i-1].Key:
			return fmt.Errorf("kvs[%d]: key %q is not after %q (keys come sorted, once each)", i, kv.Key, op.KVs[i-1].Key)
		case kv.ModRevision < 0 || kv.CreateRevision < 0 || kv.Version < 0:
			return fmt.Errorf("kvs[%d]: a negative revision or version", i)
		}
		if err := validateRevisions(kv.ModRevision, kv.CreateRevision, kv.Version, op.Revision); err != nil {
			return fmt.Errorf("kvs[%d]: %w", i, err)
		}
	}
	return nil
}

// validateRevisions checks what one key's revisions say on their own: a key
// is created no later than it was last modified, which is no later than the
// revision it was read at. Zero is "not recorded" and checks nothing.
func validateRevisions(mod, create, version, header int64) error {
	switch {
	case mod != 0 && create > mod:
		return fmt.Errorf("create_revision: %d is after mod_revision %d", create, mod)
	case header != 0 && mod > header:
		return fmt.Errorf("mod_revision: %d is after the header revision %d", mod, header)
	case mod != 0 && create != 0 && version != 0 && version > mod-create+1:
		return fmt.Errorf("version: %d writes cannot fit between create_revision %d and mod_revision %d", version, create, mod)
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

// WriteJSON writes h as one JSON object with one operation per line, then
// its compactions, then its watchers with one watch response per line, so
// that a history file diffs and greps well. It does not validate: a broken
// history is still worth saving, and ReadJSON will say what is wrong with it.
func WriteJSON(w io.Writer, h History) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(`{"operations":[`)
	for i := range h.Operations {
		if err := writeLine(bw, i, &h.Operations[i]); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	bw.WriteString("\n]")
	if len(h.Compactions) > 0 {
		bw.WriteString(`,"compactions":[`)
		for i := range h.Compactions {
			if err := writeLine(bw, i, &h.Compactions[i]); err != nil {
				return fmt.Errorf("compaction %d: %w", i, err)
			}
		}
		bw.WriteString("\n]")
	}
	if len(h.Watchers) > 0 {
		bw.WriteString(`,"watchers":[`)
		for i := range h.Watchers {
			if i > 0 {
				bw.WriteByte(',')
			}
			if err := writeWatcher(bw, &h.Watchers[i]); err != nil {
				return fmt.Errorf("watcher %d: %w", i, err)
			}
		}
		bw.WriteString("\n]")
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// writeLine writes v as the i-th element of a list, on a line of its own.
func writeLine(bw *bufio.Writer, i int, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if i > 0 {
		bw.WriteByte(',')
	}
	bw.WriteByte('\n')
	bw.Write(line)
	return nil
}

// writeWatcher writes a watcher with each of its sessions' fields on a
// line, then that session's responses one per line: the JSON of the
// watcher, only broken into lines.
func writeWatcher(bw *bufio.Writer, w *Watcher) error {
	head := *w
	head.Sessions = nil
	if err := writeOpen(bw, &head, "sessions"); err != nil {
		return err
	}
	for i := range w.Sessions {
		s := w.Sessions[i]
		if i > 0 {
			bw.WriteByte(',')
		}
		responses := s.Responses
		s.Responses = nil
		if err := writeOpen(bw, &s, "responses"); err != nil {
			return err
		}
		for j := range responses {
			if err := writeLine(bw, j, &responses[j]); err != nil {
				return fmt.Errorf("session %d: response %d: %w", i, j, err)
			}
		}
		bw.WriteString("]}")
	}
	bw.WriteString("]}")
	return nil
}

// writeOpen writes v's JSON object on a new line, without its closing
// brace, followed by the opening of the list field list (which v must
// leave out, being empty and omitted, or nil): the caller writes the
// list's elements and closes both.
func writeOpen(bw *bufio.Writer, v any, list string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = bytes.TrimSuffix(b, []byte("}"))
	b = bytes.TrimSuffix(b, []byte(`,"`+list+`":null`))
	bw.WriteByte('\n')
	bw.Write(b)
	if len(b) > 1 {
		bw.WriteByte(',')
	}
	bw.WriteString(`"` + list + `":[`)
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
		Operations  []json.RawMessage `json:"operations"`
		Compactions []Compaction      `json:"compactions"`
		Watchers    []json.RawMessage `json:"watchers"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return History{}, fmt.Errorf("decode history: %w", err)
	}
	if len(raw.Operations) > OperationsMax {
		return History{}, fmt.Errorf("history has %d operations, more than the limit of %d", len(raw.Operations), OperationsMax)
	}
	h := History{Operations: make([]Operation, len(raw.Operations)), Compactions: raw.Compactions}
	for i, m := range raw.Operations {
		if err := decodeStrict(m, &h.Operations[i]); err != nil {
			return History{}, fmt.Errorf("decode history: operation %d: %w", i, err)
		}
	}
	for i, m := range raw.Watchers {
		var w Watcher
		if err := decodeStrict(m, &w); err != nil {
			return History{}, fmt.Errorf("decode history: watcher %d: %w", i, err)
		}
		h.Watchers = append(h.Watchers, w)
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
