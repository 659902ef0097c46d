package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
)

// TraceEvent is one line of a run's trace (JSON lines, for the visualiser
// and for people). Every event also feeds the run's trace hash, in a
// canonical binary form, whether or not the trace is written out.
type TraceEvent struct {
	At     int64  `json:"t"`  // virtual nanoseconds since the start
	Kind   string `json:"ev"` // send, drop, deliver, reject, leader, crash, restart, fault, call, return, ...
	Node   string `json:"node,omitempty"`
	Peer   string `json:"peer,omitempty"` // the other member of a message
	Msg    string `json:"msg,omitempty"`  // raft message type
	Term   uint64 `json:"term,omitempty"`
	Index  uint64 `json:"index,omitempty"`
	Client int    `json:"client,omitempty"` // client number, from 1
	Detail string `json:"detail,omitempty"`
}

type tracer struct {
	hash   hash.Hash
	buf    []byte
	out    io.Writer // nil: hash only
	enc    *json.Encoder
	events int
	err    error // first write error; the run reports it
}

func newTracer(out io.Writer) *tracer {
	t := &tracer{hash: sha256.New(), out: out}
	if out != nil {
		t.enc = json.NewEncoder(out)
	}
	return t
}

// record hashes ev and, if a trace is being written, writes it.
func (t *tracer) record(ev TraceEvent) {
	t.events++
	b := t.buf[:0]
	b = binary.BigEndian.AppendUint64(b, uint64(ev.At))
	b = appendString(b, ev.Kind)
	b = appendString(b, ev.Node)
	b = appendString(b, ev.Peer)
	b = appendString(b, ev.Msg)
	b = binary.BigEndian.AppendUint64(b, ev.Term)
	b = binary.BigEndian.AppendUint64(b, ev.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(ev.Client))
	b = appendString(b, ev.Detail)
	t.hash.Write(b)
	t.buf = b
	if t.enc != nil && t.err == nil {
		if err := t.enc.Encode(ev); err != nil {
			t.err = fmt.Errorf("write trace: %w", err)
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// sum returns the trace hash in hex.
func (t *tracer) sum() string { return hex.EncodeToString(t.hash.Sum(nil)) }
