package linearizability

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	h := History{Operations: []Operation{
		put(0, "k0", "c0-1", 10, 20),
		get(1, "k0", 15, 25, "c0-1"),
		getAbsent(1, "k1", 30, 40),
		get(1, "k1", 41, 50, ""), // found, empty value
		del(2, "k0", 30, 45, 1),
		cas(3, "k0", "c0-1", "c3-1", 50, 60, true),
		casAbsent(3, "k1", "c3-2", 61, 70, false),
		unknown(put(4, "k2", "c4-1", 80, 0)),
		failed(del(5, "k2", 90, 0, 0)),
		cas(6, "k\"odd key\n", "", "", 100, 110, false),
	}}
	h.Operations[0].Revision = 7
	if err := h.Validate(); err != nil {
		t.Fatalf("test history is invalid: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, h); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != len(h.Operations)+2 {
		t.Errorf("%d lines, want one per operation and two more:\n%s", lines, buf.String())
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("round trip changed the history:\ngot  %+v\nwant %+v", got, h)
	}
}

func TestJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, History{}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Operations) != 0 {
		t.Errorf("got %d operations, want 0", len(got.Operations))
	}
}

// TestReadJSONRejects feeds ReadJSON one bad operation after a good one and
// expects an error naming index 1 and the field.
func TestReadJSONRejects(t *testing.T) {
	const good = `{"client":0,"kind":"put","key":"k","value":"v","call":1,"return":2,"outcome":"ok"}`
	tests := []struct {
		name string
		op   string // operation 1
		want string
	}{
		{"bad kind", `{"client":1,"kind":"scan","key":"k","call":1,"return":2,"outcome":"ok"}`, `operation 1: kind: "scan"`},
		{"missing kind", `{"client":1,"key":"k","call":1,"return":2,"outcome":"ok"}`, `operation 1: kind: ""`},
		{"bad outcome", `{"client":1,"kind":"get","key":"k","call":1,"return":2,"outcome":"timeout"}`, `operation 1: outcome: "timeout"`},
		{"unknown field", `{"client":1,"kind":"get","key":"k","call":1,"return":2,"outcome":"ok","outcom":"ok"}`, `operation 1: json: unknown field "outcom"`},
		{"wrong type", `{"client":1,"kind":"get","key":"k","call":"soon","return":2,"outcome":"ok"}`, `operation 1: json: cannot unmarshal`},
		{"negative client", `{"client":-1,"kind":"get","key":"k","call":1,"return":2,"outcome":"ok"}`, `operation 1: client: -1`},
		{"empty key", `{"client":1,"kind":"get","key":"","call":1,"return":2,"outcome":"ok"}`, `operation 1: key: empty`},
		{"return before call", `{"client":1,"kind":"get","key":"k","call":5,"return":2,"outcome":"ok"}`, `operation 1: return: 2 is before call 5`},
		{"value on a get", `{"client":1,"kind":"get","key":"k","value":"v","call":1,"return":2,"outcome":"ok"}`, `operation 1: value: set on a get`},
		{"expect on a put", `{"client":1,"kind":"put","key":"k","expect":"v","call":1,"return":2,"outcome":"ok"}`, `operation 1: expect: set on a put`},
		{"expect_absent on a delete", `{"client":1,"kind":"delete","key":"k","expect_absent":true,"call":1,"return":2,"outcome":"ok"}`, `operation 1: expect_absent: set on a delete`},
		{"expect and expect_absent", `{"client":1,"kind":"cas","key":"k","expect":"a","expect_absent":true,"call":1,"return":2,"outcome":"ok"}`, `operation 1: expect: set together with expect_absent`},
		{"result on a failed op", `{"client":1,"kind":"get","key":"k","call":1,"return":2,"outcome":"failed","found":true}`, `operation 1: found: set on an operation whose outcome is failed`},
		{"result on an unknown op", `{"client":1,"kind":"cas","key":"k","call":1,"outcome":"unknown","succeeded":true}`, `operation 1: succeeded: set on an operation whose outcome is unknown`},
		{"result of another kind", `{"client":1,"kind":"put","key":"k","call":1,"return":2,"outcome":"ok","deleted":1}`, `operation 1: deleted: set on a put`},
		{"result without found", `{"client":1,"kind":"get","key":"k","call":1,"return":2,"outcome":"ok","result":"v"}`, `operation 1: result: set but found is false`},
		{"deleted two", `{"client":1,"kind":"delete","key":"k","call":1,"return":2,"outcome":"ok","deleted":2}`, `operation 1: deleted: 2`},
		{"negative revision", `{"client":1,"kind":"get","key":"k","call":1,"return":2,"outcome":"ok","revision":-3}`, `operation 1: revision: -3`},
		{"overlap on one client", `{"client":0,"kind":"get","key":"k","call":1,"return":3,"outcome":"ok"}`, `operation 1: call: 1 overlaps operation 0 of client 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(`{"operations":[` + good + ",\n" + tt.op + `]}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestReadJSONRejectsDocument(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"not json", `operations`, "decode history"},
		{"trailing data", `{"operations":[]} {}`, "data after the end"},
		{"unknown top-level field", `{"operations":[],"ops":[]}`, `unknown field "ops"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSON(strings.NewReader(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateClients(t *testing.T) {
	tests := []struct {
		name string
		ops  []Operation
		want string // "" for valid
	}{
		{"sequential, touching", []Operation{
			get(0, "k", 10, 20, "v"),
			put(0, "k", "v", 0, 10), // recorded out of order: fine
			get(0, "k", 20, 30, "v"),
		}, ""},
		{"overlapping", []Operation{
			put(0, "k", "v", 0, 10),
			get(0, "k", 5, 15, "v"),
		}, "operation 1: call: 5 overlaps operation 0 of client 0"},
		{"reused after unknown", []Operation{
			unknown(put(0, "k", "v", 0, 0)),
			get(0, "k", 100, 110, "v"),
		}, "operation 1: client: 0 already had an unknown outcome (operation 0)"},
		{"fresh id after unknown", []Operation{
			unknown(put(0, "k", "v", 0, 0)),
			get(1, "k", 100, 110, "v"),
		}, ""},
		{"failed keeps its id", []Operation{
			failed(put(0, "k", "v", 0, 0)),
			getAbsent(0, "k", 100, 110),
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := History{Operations: tt.ops}.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	var h History
	h.Add(put(0, "k", "a", 0, 1))
	h.Add(getAbsent(1, "k", 0, 1))
	if len(h.Operations) != 2 || h.Operations[1].Kind != KindGet {
		t.Errorf("got %+v", h.Operations)
	}
}

func TestDescribeOperation(t *testing.T) {
	tests := []struct {
		op   Operation
		want string
	}{
		{put(0, "k3", "c1-17", 0, 1), `put(k3, "c1-17")`},
		{get(0, "k3", 0, 1, "c1-17"), `get(k3) -> "c1-17" mod ? create ? v?`},
		{getAbsent(0, "k3", 0, 1), `get(k3) -> absent`},
		{del(0, "k3", 0, 1, 1), `delete(k3) -> 1`},
		{cas(0, "k3", "a", "b", 0, 1, false), `cas(k3, "a"->"b") -> false`},
		{casAbsent(0, "k3", "b", 0, 1, true), `cas(k3, absent->"b") -> true`},
		{unknown(put(0, "k3", "c1-17", 0, 0)), `unknown put(k3, "c1-17")`},
		{unknown(del(0, "k3", 0, 0, 0)), `unknown delete(k3)`},
		{put(0, "a key", "v", 0, 1), `put("a key", "v")`},
	}
	for _, tt := range tests {
		h := History{Operations: []Operation{tt.op}}
		ops, _ := prepare(&h, nil).porcupineOperations()
		got := describeStep(ops[0].Input.(*step), ops[0].Output.(*outcome))
		if got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

func TestDescribeState(t *testing.T) {
	got := describeState(registers{{exists: true, value: "b", mod: 4, create: 2, version: 3}, {}, {exists: true, value: "a"}})
	if want := `"a" mod ? create ? v? | "b" mod 4 create 2 v3 | absent`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestJSONRoundTripRevisions round-trips every field the revision-aware
// format added: revisions on reads and writes, ranges, range deletes, txns
// with their deletes' counts, serializable reads.
func TestJSONRoundTripRevisions(t *testing.T) {
	h := History{Operations: []Operation{
		at(put(0, "k0", "c0-1", 10, 20), 2),
		txn(1, 10, 30, 3, tput("k1", "c1-1"), tdel("k0", 1), TxnOp{Kind: KindDelete, Key: "k2", End: "k3"}),
		getRev(2, "k1", 40, 50, 3, "c1-1", 3, 3, 1),
		serializable(getRev(2, "k1", 60, 70, 3, "c1-1", 3, 3, 1)),
		rangeRead(3, "k", PrefixEnd("k"), 40, 50, 3, kv("k1", "c1-1", 3, 3, 1)),
		serializable(rangeRead(3, "k0", EndAll, 60, 70, 1)),
		delRange(4, "k0", EndAll, 80, 90, 1, 4),
		unknown(txn(5, 80, 0, 0, tput("k5", "c5-1"))),
		failed(rangeRead(6, "a", "b", 80, 0, 0)),
	}}
	if err := h.Validate(); err != nil {
		t.Fatalf("test history is invalid: %v", err)
	}
	if r := Check(h, Options{}); r.Verdict != VerdictOK {
		t.Fatalf("test history: verdict %q (%s), want ok", r.Verdict, r.Reason)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, h); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"end":"\u0000"`, `"ops":[`, `"serializable":true`, `"kvs":[`, `"mod_revision":3`, `"create_revision":3`, `"version":1`, `"deleted":1`, `"revision":4`} {
		if !strings.Contains(buf.String(), field) {
			t.Errorf("JSON does not contain %s:\n%s", field, buf.String())
		}
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("round trip changed the history:\ngot  %+v\nwant %+v", got, h)
	}
}

// TestValidateRejectsRevisionFields: each new field, misused, is refused
// with a message naming it.
func TestValidateRejectsRevisionFields(t *testing.T) {
	with := func(op Operation, f func(*Operation)) Operation {
		f(&op)
		return op
	}
	tests := []struct {
		name string
		op   Operation
		want string
	}{
		{"end on a put", with(put(0, "a", "v", 0, 1), func(op *Operation) { op.End = "b" }), "end: set on a put"},
		{"end on a get", with(get(0, "a", 0, 1, "v"), func(op *Operation) { op.End = "b" }), "end: set on a get"},
		{"a range without end", rangeRead(0, "a", "", 0, 1, 1), "end: a range needs one (a single key is a get)"},
		{"end not after key", rangeRead(0, "b", "a", 0, 1, 1), `end: "a" is not after key "b"`},
		{"end equal to key", delRange(0, "b", "b", 0, 1, 0, 1), `end: "b" is not after key "b"`},
		{"serializable on a put", serializable(put(0, "a", "v", 0, 1)), "serializable: set on a put"},
		{"serializable on a txn", serializable(txn(0, 0, 1, 2, tput("a", "v"))), "serializable: set on a txn"},
		{"ops on a put", with(put(0, "a", "v", 0, 1), func(op *Operation) { op.Ops = []TxnOp{tput("b", "w")} }), "ops: set on a put"},
		{"key on a txn", with(txn(0, 0, 1, 2, tput("a", "v")), func(op *Operation) { op.Key = "a" }), "key: set on a txn"},
		{"a txn without ops", txn(0, 0, 1, 2), "ops: a txn has 0, not 1 to 128"},
		{"a txn's get", txn(0, 0, 1, 2, TxnOp{Kind: KindGet, Key: "a"}), `ops[0].kind: "get" is not put or delete`},
		{"a txn's put with end", txn(0, 0, 1, 2, TxnOp{Kind: KindPut, Key: "a", End: "b"}), "ops[0].end: set on a put"},
		{"a txn's delete with a value", txn(0, 0, 1, 2, TxnOp{Kind: KindDelete, Key: "a", Value: "v"}), "ops[0].value: set on a delete"},
		{"a txn's put reports deleted", txn(0, 0, 1, 2, TxnOp{Kind: KindPut, Key: "a", Deleted: 1}), "ops[0].deleted: 1 on a put"},
		{"a txn's one-key delete deleted two", txn(0, 0, 1, 2, tput("a", "v"), tdel("b", 2)), "ops[1].deleted: 2 is not 0 or 1 (one key, no end)"},
		{"a txn's delete counted on an unknown outcome", unknown(txn(0, 0, 1, 0, tdel("b", 1))), "ops[0].deleted: set on an operation whose outcome is unknown"},
		{"a txn with one key twice", txn(0, 0, 1, 2, tput("a", "v"), tdel("a", 0)), `ops[1]: key "a" overlaps ops[0] (etcd: duplicate key given in txn request)`},
		{"a txn whose delete range covers its put", txn(0, 0, 1, 2, TxnOp{Kind: KindDelete, Key: "a", End: "c"}, tput("b", "v")), `ops[1]: key "b" overlaps ops[0]`},
		{"a txn with overlapping delete ranges", txn(0, 0, 1, 2, TxnOp{Kind: KindDelete, Key: "c", End: EndAll}, TxnOp{Kind: KindDelete, Key: "a", End: "d"}), `ops[1]: key "a" overlaps ops[0]`},
		{"kvs out of range", rangeRead(0, "a", "c", 0, 1, 2, kv("c", "v", 2, 2, 1)), `kvs[0]: key "c" is outside the range read`},
		{"kvs unsorted", rangeRead(0, "a", "z", 0, 1, 3, kv("b", "v", 2, 2, 1), kv("a", "w", 3, 3, 1)), `kvs[1]: key "a" is not after "b" (keys come sorted, once each)`},
		{"kvs with a key twice", rangeRead(0, "a", "z", 0, 1, 3, kv("b", "v", 2, 2, 1), kv("b", "v", 2, 2, 1)), `kvs[1]: key "b" is not after "b"`},
		{"kvs on a get", with(get(0, "a", 0, 1, "v"), func(op *Operation) { op.KVs = []KV{kv("a", "v", 0, 0, 0)} }), "kvs: set on a get"},
		{"kvs on a failed range", with(failed(rangeRead(0, "a", "z", 0, 0, 0)), func(op *Operation) { op.KVs = []KV{kv("a", "v", 0, 0, 0)} }), "kvs: set on an operation whose outcome is failed"},
		{"mod_revision after the header revision", getRev(0, "a", 0, 1, 3, "v", 5, 2, 1), "mod_revision: 5 is after the header revision 3"},
		{"a kv's mod_revision after the header revision", rangeRead(0, "a", "z", 0, 1, 3, kv("b", "v", 5, 2, 1)), "kvs[0]: mod_revision: 5 is after the header revision 3"},
		{"create_revision after mod_revision", getRev(0, "a", 0, 1, 5, "v", 3, 4, 1), "create_revision: 4 is after mod_revision 3"},
		{"version too large for its revisions", getRev(0, "a", 0, 1, 5, "v", 3, 2, 3), "version: 3 writes cannot fit between create_revision 2 and mod_revision 3"},
		{"a kv's version too large", rangeRead(0, "a", "z", 0, 1, 5, kv("b", "v", 4, 4, 2)), "kvs[0]: version: 2 writes cannot fit between create_revision 4 and mod_revision 4"},
		{"a kv's negative version", rangeRead(0, "a", "z", 0, 1, 5, kv("b", "v", 4, 4, -1)), "kvs[0]: a negative revision or version"},
		{"revisions of a key not found", with(getAbsent(0, "a", 0, 1), func(op *Operation) { op.ModRevision = 2 }), "mod_revision, create_revision, version: set but found is false"},
		{"a header revision on a failed operation", at(failed(put(0, "a", "v", 0, 0)), 2), "revision: set on an operation whose outcome is failed"},
		{"a header revision on an unknown operation", at(unknown(put(0, "a", "v", 0, 0)), 2), "revision: set on an operation whose outcome is unknown"},
		{"a range delete count on a single key", del(0, "a", 0, 1, 2), "deleted: 2 is not 0 or 1 (one key, no end)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := History{Operations: []Operation{tt.op}}.Validate()
			want := "operation 0: " + tt.want
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want one containing %q", err, want)
			}
		})
	}
}
