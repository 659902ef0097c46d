package linearizability

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// genConfig shapes a generated history.
type genConfig struct {
	seed           uint64
	ops            int
	keys           int
	clients        int
	unknownPercent int // of operations whose outcome the client never learns
	failedPercent  int // of operations that definitely had no effect
	// revisions records etcd's revisions on every ok operation and adds
	// range reads, range deletes, txns and serializable reads to the mix.
	// Without it the history is the one it always was: puts, gets, deletes
	// and cas with no revisions.
	revisions bool
}

// pending is a generated operation and the moment it takes effect.
type pending struct {
	op      Operation
	point   int64 // linearization point; meaningful when applied
	applied bool
	// expectCurrent makes a cas expect the value its key holds when it
	// takes effect, as a client that read it first would, so that compares
	// hold often enough to matter.
	expectCurrent bool
	// stale is how many revisions behind the current one a serializable
	// read is served (never below revision 1).
	stale int64
}

// generate returns a linearizable history by construction: each client
// issues operations one after another over random, overlapping intervals;
// each operation takes effect at a random point inside its interval (an
// unknown write, at a random point after its call, or never); replaying the
// effects in point order on a plain map gives every result. Values are
// unique per write, as the simulator's are.
func generate(cfg genConfig) History {
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6c696e))
	var all []*pending
	nextClientID := cfg.clients
	for c := 0; c < cfg.clients; c++ {
		id := c
		var now int64
		for seq := 0; seq < cfg.ops/cfg.clients; seq++ {
			now += rng.Int64N(50)
			p := genOperation(rng, cfg, id, seq, now)
			all = append(all, p)
			if p.op.Outcome == OutcomeUnknown {
				id = nextClientID // a fresh id, as the recorder gives
				nextClientID++
				now += 200 // the client waited for its timeout
				continue
			}
			now = p.op.Return
		}
	}
	if cfg.revisions {
		replayRevisions(all, keyNames(cfg.keys))
	} else {
		replay(all)
	}
	var h History
	for _, p := range all {
		h.Add(p.op)
	}
	return h
}

// genOperation draws one operation's kind, arguments, interval and outcome.
func genOperation(rng *rand.Rand, cfg genConfig, client, seq int, call int64) *pending {
	op := Operation{
		Client: client,
		Key:    fmt.Sprintf("k%d", rng.IntN(cfg.keys)),
		Call:   call,
		Return: call + 1 + rng.Int64N(200),
	}
	if cfg.revisions {
		return genRevisionOperation(rng, cfg, op, seq)
	}
	switch n := rng.IntN(10); {
	case n < 4:
		op.Kind = KindPut
		op.Value = fmt.Sprintf("c%d-%d", client, seq)
	case n < 8:
		op.Kind = KindGet
	case n < 9:
		op.Kind = KindDelete
	default:
		op.Kind = KindCAS
		op.Value = fmt.Sprintf("c%d-%d", client, seq)
		// Expect a value some client may well have written to some key,
		// so that a fair share of compares hold.
		op.Expect = fmt.Sprintf("c%d-%d", rng.IntN(cfg.clients), max(0, seq-rng.IntN(8)))
		if rng.IntN(4) == 0 {
			op.Expect, op.ExpectAbsent = "", true
		}
	}
	p := &pending{op: op, applied: true, expectCurrent: op.Kind == KindCAS && !op.ExpectAbsent && rng.IntN(2) == 0}
	drawOutcome(rng, cfg, p)
	return p
}

// drawOutcome draws p's linearization point and outcome: ok at a point
// inside its interval; unknown, applied (if a write) or not, at a point
// possibly long after its client gave up; or failed.
func drawOutcome(rng *rand.Rand, cfg genConfig, p *pending) {
	op := p.op
	p.point = op.Call + rng.Int64N(op.Return-op.Call+1)
	switch n := rng.IntN(100); {
	case n < cfg.unknownPercent:
		p.op.Outcome = OutcomeUnknown
		p.op.Return = 0
		p.applied = op.IsWrite() && rng.IntN(2) == 0
		p.point = op.Call + rng.Int64N(1000) // possibly long after the client gave up
	case n < cfg.unknownPercent+cfg.failedPercent:
		p.op.Outcome = OutcomeFailed
		p.applied = false
	default:
		p.op.Outcome = OutcomeOK
	}
}

// replay applies the applied operations in linearization-point order to a
// map and records each ok operation's results.
func replay(all []*pending) {
	order := make([]*pending, 0, len(all))
	for _, p := range all {
		if p.applied {
			order = append(order, p)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].point < order[j].point })
	store := make(map[string]string)
	for _, p := range order {
		op := &p.op
		value, exists := store[op.Key]
		switch op.Kind {
		case KindPut:
			store[op.Key] = op.Value
		case KindGet:
			op.Found, op.Result = exists, value
		case KindDelete:
			if exists {
				op.Deleted = 1
				delete(store, op.Key)
			}
		case KindCAS:
			if p.expectCurrent && exists {
				op.Expect = value
			}
			holds := exists && value == op.Expect
			if op.ExpectAbsent {
				holds = !exists
			}
			op.Succeeded = holds
			if holds {
				store[op.Key] = op.Value
			}
		}
		if op.Outcome != OutcomeOK {
			op.Found, op.Result, op.Deleted, op.Succeeded = false, "", 0, false
		}
	}
}

// keyNames returns the generator's keys, k0 to k<n-1>, in key order (k1
// sorts before k10 and k2, so prefix ranges cover more than one key).
func keyNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("k%d", i)
	}
	sort.Strings(names)
	return names
}

// genRevisionOperation draws the kind and arguments of an operation of a
// history with revisions: puts, gets, deletes, cas as before, plus range
// reads, range and prefix deletes, txns of 2 to 4 writes on distinct keys,
// and serializable gets and ranges, possibly stale.
func genRevisionOperation(rng *rand.Rand, cfg genConfig, op Operation, seq int) *pending {
	names := keyNames(cfg.keys)
	value := fmt.Sprintf("c%d-%d", op.Client, seq)
	p := &pending{applied: true}
	switch n := rng.IntN(100); {
	case n < 22:
		op.Kind, op.Value = KindPut, value
	case n < 40:
		op.Kind = KindGet
	case n < 46:
		op.Kind = KindDelete
	case n < 51:
		op.Kind = KindDelete
		op.Key, op.End = genRange(rng, names)
	case n < 61:
		op.Kind, op.Value = KindCAS, value
		op.Expect = fmt.Sprintf("c%d-%d", rng.IntN(cfg.clients), max(0, seq-rng.IntN(8)))
		if rng.IntN(4) == 0 {
			op.Expect, op.ExpectAbsent = "", true
		}
		p.expectCurrent = !op.ExpectAbsent && rng.IntN(2) == 0
	case n < 78:
		op.Kind = KindRange
		op.Key, op.End = genRange(rng, names)
	default:
		op.Kind, op.Key = KindTxn, ""
		for i, k := range rng.Perm(len(names))[:min(len(names), 2+rng.IntN(3))] {
			t := TxnOp{Kind: KindPut, Key: names[k], Value: fmt.Sprintf("%s-%d", value, i)}
			if rng.IntN(3) == 0 {
				t.Kind, t.Value = KindDelete, ""
			}
			op.Ops = append(op.Ops, t)
		}
	}
	if !op.IsWrite() && rng.IntN(3) == 0 {
		op.Serializable = true
		p.stale = rng.Int64N(6)
	}
	p.op = op
	drawOutcome(rng, cfg, p)
	return p
}

// genRange draws a range of the generator's keys: up to a later key, a
// prefix, or every key from one on.
func genRange(rng *rand.Rand, names []string) (key, end string) {
	i := rng.IntN(len(names))
	key = names[i]
	switch n := rng.IntN(3); {
	case n == 0 && i+1 < len(names):
		end = names[i+1+rng.IntN(len(names)-i-1)]
	case n == 1:
		end = PrefixEnd(key)
	default:
		end = EndAll
	}
	return key, end
}

// genKV is one key of the generator's store, with etcd's revisions.
type genKV struct {
	exists               bool
	value                string
	mod, create, version int64
}

// genStore is the generator's etcd: a revision that starts at 1 and grows
// by one for every operation that changes something, and each key's past
// states, for serializable reads served at an older revision.
type genStore struct {
	rev  int64
	past map[string][]genPast
}

// genPast is a key's state from revision rev on.
type genPast struct {
	rev int64
	kv  genKV
}

// at returns key's state at revision rev.
func (s *genStore) at(key string, rev int64) genKV {
	past := s.past[key]
	i := sort.Search(len(past), func(i int) bool { return past[i].rev > rev })
	if i == 0 {
		return genKV{}
	}
	return past[i-1].kv
}

func (s *genStore) set(key string, kv genKV) {
	s.past[key] = append(s.past[key], genPast{s.rev, kv})
}

// put writes at the current revision, which the caller has just created.
func (s *genStore) put(key, value string) {
	kv := s.at(key, s.rev)
	if kv.exists {
		kv.value, kv.mod, kv.version = value, s.rev, kv.version+1
	} else {
		kv = genKV{exists: true, value: value, mod: s.rev, create: s.rev, version: 1}
	}
	s.set(key, kv)
}

// keysIn returns the keys in [key, end) that exist at revision rev.
func (s *genStore) keysIn(names []string, key, end string, rev int64) []string {
	var keys []string
	for _, k := range names {
		if InRange(k, key, end) && s.at(k, rev).exists {
			keys = append(keys, k)
		}
	}
	return keys
}

// replayRevisions is replay for a history with revisions: it applies the
// applied operations in linearization-point order to a genStore and records
// each ok operation's results and header revision. A write that changes
// nothing (a delete of absent keys, a cas whose compare fails, a txn that
// only deletes absent keys) creates no revision and reports the current
// one; a serializable read reports the state at a revision up to p.stale
// older than the current one.
func replayRevisions(all []*pending, names []string) {
	order := make([]*pending, 0, len(all))
	for _, p := range all {
		if p.applied {
			order = append(order, p)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].point < order[j].point })
	s := &genStore{rev: 1, past: make(map[string][]genPast)}
	for _, p := range order {
		op := &p.op
		switch op.Kind {
		case KindPut:
			s.rev++
			s.put(op.Key, op.Value)
			op.Revision = s.rev
		case KindGet:
			op.Revision = max(1, s.rev-p.stale)
			if kv := s.at(op.Key, op.Revision); kv.exists {
				op.Found, op.Result = true, kv.value
				op.ModRevision, op.CreateRevision, op.Version = kv.mod, kv.create, kv.version
			}
		case KindRange:
			op.Revision = max(1, s.rev-p.stale)
			for _, k := range s.keysIn(names, op.Key, op.End, op.Revision) {
				kv := s.at(k, op.Revision)
				op.KVs = append(op.KVs, KV{Key: k, Value: kv.value, ModRevision: kv.mod, CreateRevision: kv.create, Version: kv.version})
			}
		case KindDelete:
			keys := s.keysIn(names, op.Key, op.End, s.rev)
			op.Deleted = int64(len(keys))
			if len(keys) > 0 {
				s.rev++
				for _, k := range keys {
					s.set(k, genKV{})
				}
			}
			op.Revision = s.rev
		case KindCAS:
			kv := s.at(op.Key, s.rev)
			if p.expectCurrent && kv.exists {
				op.Expect = kv.value
			}
			holds := kv.exists && kv.value == op.Expect
			if op.ExpectAbsent {
				holds = !kv.exists
			}
			op.Succeeded = holds
			if holds {
				s.rev++
				s.put(op.Key, op.Value)
			}
			op.Revision = s.rev
		case KindTxn:
			changes := false
			for i := range op.Ops {
				t := &op.Ops[i]
				if t.Kind == KindPut || s.at(t.Key, s.rev).exists {
					changes = true
				}
			}
			if changes {
				s.rev++
			}
			for i := range op.Ops {
				t := &op.Ops[i]
				if t.Kind == KindPut {
					s.put(t.Key, t.Value)
				} else if s.at(t.Key, s.rev).exists {
					t.Deleted = 1
					s.set(t.Key, genKV{})
				}
			}
			op.Revision = s.rev
		}
		if op.Outcome != OutcomeOK {
			op.Found, op.Result, op.Deleted, op.Succeeded = false, "", 0, false
			op.ModRevision, op.CreateRevision, op.Version, op.Revision = 0, 0, 0, 0
			op.KVs = nil
			for i := range op.Ops {
				op.Ops[i].Deleted = 0
			}
		}
	}
}
