package mvcc_test

import (
	"bytes"
	"cmp"
	"maps"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node/mvcc"
)

// model is a deliberately naive key-value store with etcd's write
// semantics, written from the API's documentation without an index or
// generations: the current KeyValue of every key and the revision. The
// randomized test checks the Store's answers against it.
type model struct {
	rev int64
	kvs map[string]*mvccpb.KeyValue
}

func newModel() *model { return &model{rev: 1, kvs: map[string]*mvccpb.KeyValue{}} }

// spanKeys lists the keys of a request's span, ascending.
func (m *model) spanKeys(key, rangeEnd []byte) []string {
	var keys []string
	for k := range m.kvs {
		switch {
		case len(rangeEnd) == 0:
			if k == string(key) {
				keys = append(keys, k)
			}
		case bytes.Equal(rangeEnd, []byte{0}):
			if k >= string(key) {
				keys = append(keys, k)
			}
		default:
			if k >= string(key) && k < string(rangeEnd) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

func (m *model) get(keys []string) []*mvccpb.KeyValue {
	var kvs []*mvccpb.KeyValue
	for _, k := range keys {
		kvs = append(kvs, proto.Clone(m.kvs[k]).(*mvccpb.KeyValue))
	}
	return kvs
}

// modelTxn is one transaction in progress: every write gets revision
// begin+1; a read sees begin+1 once something changed.
type modelTxn struct {
	m       *model
	begin   int64
	changes int
}

func (t *modelTxn) readRev() int64 {
	if t.changes > 0 {
		return t.begin + 1
	}
	return t.begin
}

func (t *modelTxn) put(p *pb.PutRequest) (*pb.PutResponse, error) {
	prev := t.m.kvs[string(p.Key)]
	if (p.IgnoreValue || p.IgnoreLease) && prev == nil {
		return nil, mvcc.ErrKeyNotFound
	}
	rev := t.begin + 1
	next := &mvccpb.KeyValue{Key: p.Key, Value: p.Value, Lease: p.Lease, CreateRevision: rev, ModRevision: rev, Version: 1}
	if prev != nil {
		next.CreateRevision, next.Version = prev.CreateRevision, prev.Version+1
		if p.IgnoreValue {
			next.Value = prev.Value
		}
		if p.IgnoreLease {
			next.Lease = prev.Lease
		}
	}
	resp := &pb.PutResponse{Header: hdr(rev)}
	if p.PrevKv && prev != nil {
		resp.PrevKv = proto.Clone(prev).(*mvccpb.KeyValue)
	}
	t.m.kvs[string(p.Key)] = next
	t.changes++
	return resp, nil
}

func (t *modelTxn) deleteRange(d *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	keys := t.m.spanKeys(d.Key, d.RangeEnd)
	resp := &pb.DeleteRangeResponse{Deleted: int64(len(keys))}
	if d.PrevKv {
		resp.PrevKvs = t.m.get(keys)
	}
	for _, k := range keys {
		delete(t.m.kvs, k)
	}
	t.changes += len(keys)
	resp.Header = hdr(t.readRev())
	return resp
}

func (t *modelTxn) rangeKeys(r *pb.RangeRequest) *pb.RangeResponse {
	keys := t.m.spanKeys(r.Key, r.RangeEnd)
	return &pb.RangeResponse{Header: hdr(t.readRev()), Count: int64(len(keys)), Kvs: t.m.get(keys)}
}

// Put, DeleteRange and Txn apply a request, returning etcd's answer.
func (m *model) Put(p *pb.PutRequest) (*pb.PutResponse, error) {
	t := &modelTxn{m: m, begin: m.rev}
	resp, err := t.put(p)
	m.end(t)
	return resp, err
}

func (m *model) DeleteRange(d *pb.DeleteRangeRequest) *pb.DeleteRangeResponse {
	t := &modelTxn{m: m, begin: m.rev}
	resp := t.deleteRange(d)
	m.end(t)
	return resp
}

func (m *model) end(t *modelTxn) {
	if t.changes > 0 {
		m.rev++
	}
}

// modelPath is the branches a transaction takes, decided up front.
type modelPath struct {
	ok     bool
	nested []*modelPath
}

func (m *model) path(r *pb.TxnRequest) *modelPath {
	p := &modelPath{ok: true}
	for _, c := range r.Compare {
		if !m.holds(c) {
			p.ok = false
			break
		}
	}
	for _, op := range branch(r, p.ok) {
		if t := op.GetRequestTxn(); t != nil {
			p.nested = append(p.nested, m.path(t))
		}
	}
	return p
}

func branch(r *pb.TxnRequest, ok bool) []*pb.RequestOp {
	if ok {
		return r.Success
	}
	return r.Failure
}

func (m *model) holds(c *pb.Compare) bool {
	keys := m.spanKeys(c.Key, c.RangeEnd)
	if len(keys) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false
		}
		return compareModel(c, &mvccpb.KeyValue{})
	}
	for _, k := range keys {
		if !compareModel(c, m.kvs[k]) {
			return false
		}
	}
	return true
}

func compareModel(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var r int
	switch c.Target {
	case pb.Compare_VERSION:
		r = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_CREATE:
		r = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		r = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VALUE:
		r = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_LEASE:
		r = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return r == 0
	case pb.Compare_NOT_EQUAL:
		return r != 0
	case pb.Compare_GREATER:
		return r > 0
	default:
		return r < 0
	}
}

func (m *model) Txn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	p := m.path(r)
	if err := m.precheck(r, p); err != nil {
		return nil, err
	}
	saved := maps.Clone(m.kvs)
	t := &modelTxn{m: m, begin: m.rev}
	resp, err := t.txn(r, p)
	if err != nil {
		m.kvs = saved
		return nil, err
	}
	resp.Header = hdr(t.readRev())
	m.end(t)
	return resp, nil
}

// precheck: puts that keep a value or lease need the key before the txn.
func (m *model) precheck(r *pb.TxnRequest, p *modelPath) error {
	n := 0
	for _, op := range branch(r, p.ok) {
		if t := op.GetRequestTxn(); t != nil {
			if err := m.precheck(t, p.nested[n]); err != nil {
				return err
			}
			n++
		}
		if put := op.GetRequestPut(); put != nil && (put.IgnoreValue || put.IgnoreLease) && m.kvs[string(put.Key)] == nil {
			return mvcc.ErrKeyNotFound
		}
	}
	return nil
}

func (t *modelTxn) txn(r *pb.TxnRequest, p *modelPath) (*pb.TxnResponse, error) {
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{}, Succeeded: p.ok}
	n := 0
	for _, op := range branch(r, p.ok) {
		switch {
		case op.GetRequestPut() != nil:
			pr, err := t.put(op.GetRequestPut())
			if err != nil {
				return nil, err
			}
			resp.Responses = append(resp.Responses, respPut(pr))
		case op.GetRequestDeleteRange() != nil:
			resp.Responses = append(resp.Responses, respDel(t.deleteRange(op.GetRequestDeleteRange())))
		case op.GetRequestRange() != nil:
			resp.Responses = append(resp.Responses, respRange(t.rangeKeys(op.GetRequestRange())))
		case op.GetRequestTxn() != nil:
			tr, err := t.txn(op.GetRequestTxn(), p.nested[n])
			if err != nil {
				return nil, err
			}
			n++
			resp.Responses = append(resp.Responses, respTxn(tr))
		}
	}
	return resp, nil
}

// all is the model's answer to everything(0).
func (m *model) all() *pb.RangeResponse {
	keys := m.spanKeys([]byte{0}, []byte{0})
	return &pb.RangeResponse{Count: int64(len(keys)), Kvs: m.get(keys)}
}
