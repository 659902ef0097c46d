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
