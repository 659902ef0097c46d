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
	replay(all)
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
	p.point = op.Call + rng.Int64N(op.Return-op.Call+1)
	switch n := rng.IntN(100); {
	case n < cfg.unknownPercent:
		p.op.Outcome = OutcomeUnknown
		p.op.Return = 0
		p.applied = op.Kind != KindGet && rng.IntN(2) == 0
		p.point = op.Call + rng.Int64N(1000) // possibly long after the client gave up
	case n < cfg.unknownPercent+cfg.failedPercent:
		p.op.Outcome = OutcomeFailed
		p.applied = false
	default:
		p.op.Outcome = OutcomeOK
	}
	return p
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
