package mvcc_test

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/backend"
	"github.com/plumbdb/plumb/node/mvcc"
)

// harness is a Store over a Memory, each write in a batch of its own.
type harness struct {
	t  testing.TB
	be *backend.Memory
	s  *mvcc.Store
	// leases, when not nil, are the leases that exist (Write.CheckLeases).
	leases map[int64]bool
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	be := backend.NewMemory()
	s, err := mvcc.Open(be)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, be: be, s: s}
}

// compact and readTxn are ops for do beside the request types.
type (
	compact int64
	readTxn struct{ r *pb.TxnRequest }
)

// do executes one op, writes in a batch of their own, committed.
func (h *harness) do(op any) (proto.Message, error) {
	h.t.Helper()
	switch op := op.(type) {
	case *pb.RangeRequest:
		return h.s.Range(op)
	case readTxn:
		return h.s.ReadTxn(op.r)
	}
	b := h.be.Begin()
	w := h.s.Write(b)
	if h.leases != nil {
		w.CheckLeases(func(id int64) bool { return h.leases[id] })
	}
	var resp proto.Message
	var err error
	switch op := op.(type) {
	case *pb.PutRequest:
		resp, err = w.Put(op)
	case *pb.DeleteRangeRequest:
		resp, err = w.DeleteRange(op)
	case *pb.TxnRequest:
		resp, err = w.Txn(op)
	case compact:
		resp, err = w.Compact(int64(op))
	default:
		h.t.Fatalf("unknown op %T", op)
	}
	if cerr := b.Commit(); cerr != nil {
		h.t.Fatal(cerr)
	}
	h.s.Committed()
	return resp, err
}

func (h *harness) mustDo(op any) proto.Message {
	h.t.Helper()
	resp, err := h.do(op)
	if err != nil {
		h.t.Fatalf("%v: %v", op, err)
	}
	return resp
}

// step is one op of a scenario and what etcd answers.
type step struct {
	op   any
	want proto.Message // when err is nil
	err  error
	rev  int64 // the store's revision after, when not 0
}

func runSteps(t *testing.T, h *harness, steps []step) {
	t.Helper()
	for i, st := range steps {
		got, err := h.do(st.op)
		switch {
		case st.err != nil:
			if !errors.Is(err, st.err) {
				t.Errorf("step %d %s: error %v; want %v", i, describe(st.op), err, st.err)
			}
		case err != nil:
			t.Errorf("step %d %s: %v", i, describe(st.op), err)
		case !proto.Equal(got, st.want):
			t.Errorf("step %d %s:\n got %s\nwant %s", i, describe(st.op), text(got), text(st.want))
		}
		if st.rev != 0 && h.s.Rev() != st.rev {
			t.Errorf("step %d %s: Rev() = %d; want %d", i, describe(st.op), h.s.Rev(), st.rev)
		}
	}
}

func describe(op any) string {
	if m, ok := op.(proto.Message); ok {
		return fmt.Sprintf("%T{%s}", op, text(m))
	}
	return fmt.Sprintf("%T(%v)", op, op)
}

func text(m proto.Message) string {
	return prototext.MarshalOptions{}.Format(m)
}

// Builders.

func kv(key, value string, create, mod, ver int64) *mvccpb.KeyValue {
	return &mvccpb.KeyValue{Key: []byte(key), Value: bytesOrNil(value), CreateRevision: create, ModRevision: mod, Version: ver}
}

func leased(kv *mvccpb.KeyValue, lease int64) *mvccpb.KeyValue {
	kv.Lease = lease
	return kv
}

func keyOnly(kv *mvccpb.KeyValue) *mvccpb.KeyValue {
	kv.Value = nil
	return kv
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func put(key, value string) *pb.PutRequest {
	return &pb.PutRequest{Key: []byte(key), Value: []byte(value)}
}

func get(key string) *pb.RangeRequest { return &pb.RangeRequest{Key: []byte(key)} }

func getAt(key string, rev int64) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte(key), Revision: rev}
}

func span(key, end string) *pb.RangeRequest {
	return &pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}
}

func del(key string) *pb.DeleteRangeRequest { return &pb.DeleteRangeRequest{Key: []byte(key)} }

func hdr(rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: rev} }

func putResp(rev int64, prev *mvccpb.KeyValue) *pb.PutResponse {
	return &pb.PutResponse{Header: hdr(rev), PrevKv: prev}
}

func delResp(rev, deleted int64, prev ...*mvccpb.KeyValue) *pb.DeleteRangeResponse {
	return &pb.DeleteRangeResponse{Header: hdr(rev), Deleted: deleted, PrevKvs: prev}
}

// rangeResp is a top-level Range's answer: no Header (the node fills it).
func rangeResp(count int64, more bool, kvs ...*mvccpb.KeyValue) *pb.RangeResponse {
	return &pb.RangeResponse{Count: count, More: more, Kvs: kvs}
}

// txnRangeResp is a Range's answer inside a transaction: with its revision.
func txnRangeResp(rev, count int64, kvs ...*mvccpb.KeyValue) *pb.RangeResponse {
	return &pb.RangeResponse{Header: hdr(rev), Count: count, Kvs: kvs}
}

func opRange(r *pb.RangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func opPut(r *pb.PutRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: r}}
}

func opDel(r *pb.DeleteRangeRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
}

func opTxn(r *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: r}}
}

func txn(cmps []*pb.Compare, success, failure []*pb.RequestOp) *pb.TxnRequest {
	return &pb.TxnRequest{Compare: cmps, Success: success, Failure: failure}
}

func ops(o ...*pb.RequestOp) []*pb.RequestOp { return o }

func cmps(c ...*pb.Compare) []*pb.Compare { return c }

func respRange(r *pb.RangeResponse) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: r}}
}

func respPut(r *pb.PutResponse) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: r}}
}

func respDel(r *pb.DeleteRangeResponse) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: r}}
}

func respTxn(r *pb.TxnResponse) *pb.ResponseOp {
	return &pb.ResponseOp{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: r}}
}

func txnResp(rev int64, succeeded bool, resps ...*pb.ResponseOp) *pb.TxnResponse {
	return &pb.TxnResponse{Header: hdr(rev), Succeeded: succeeded, Responses: resps}
}

func cmpVersion(key string, result pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VERSION, Result: result, TargetUnion: &pb.Compare_Version{Version: v}}
}

func cmpValue(key string, result pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_VALUE, Result: result, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
}

func cmpMod(key string, result pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_MOD, Result: result, TargetUnion: &pb.Compare_ModRevision{ModRevision: v}}
}

func cmpCreate(key string, result pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_CREATE, Result: result, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: v}}
}

func cmpLease(key string, result pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: []byte(key), Target: pb.Compare_LEASE, Result: result, TargetUnion: &pb.Compare_Lease{Lease: v}}
}

func withEnd(c *pb.Compare, end string) *pb.Compare {
	c.RangeEnd = []byte(end)
	return c
}
