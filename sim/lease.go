package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
)

// Lease holders: applications that hold leases as clientv3 users do
// (faults.Leases). A holder is granted a lease (the cluster picks its ID,
// as clientv3's Grant asks), keeps it alive as clientv3's keep-alive loop
// does, and puts keys with it, in a key space of its own
// (lease/h<holder>/<lease>/<key>), recorded in the history as ordinary
// puts. At the end of a life drawn for each lease it stops keeping it
// alive, so that it expires, or revokes it; or it keeps it to the end.
// Once it learns that its lease is gone (a keep-alive or a put finds no
// lease, its revoke succeeded, or no keep-alive was answered within the
// TTL, when clientv3 gives a lease up) it is granted another. Requests go
// to one member and fail over to the next as the clients' do; a member
// that does not lead forwards keep-alives to the leader (forward.go).

const (
	// holderStartMaxNs: holders are first granted a lease within this
	// long of the start, spread out.
	holderStartMaxNs = int64(1e9)
	// regrantMinNs and regrantMaxNs bound the pause before a holder asks
	// for a lease again.
	regrantMinNs = int64(100e6)
	regrantMaxNs = int64(500e6)
)

// leaseHolder is one lease-holding application.
type leaseHolder struct {
	caller
	n       int      // holder number, from 1
	cur     *session // the lease it holds, nil between leases
	leases  int      // leases it was granted
	putDue  bool     // its put loop is scheduled
	putting bool     // a put in flight
}

func (w *world) newLeaseHolders() {
	l := w.sc.Leases
	if l.Holders == 0 {
		return
	}
	rng := rand.New(newStream(w.opts.Seed, streamLeases))
	for i := range l.Holders {
		h := &leaseHolder{n: i + 1}
		h.caller = caller{w: w, name: fmt.Sprintf("lease-holder %d", i+1), rng: rng, endpoints: w.endpoints(),
			endpoint: i % len(w.members), histID: w.newHistID(), calls: make(map[uint64]*leaseCall)}
		h.onGone = h.gone
		h.idx = w.addApp(h)
		w.appTimer(h.idx, rng.Int64N(holderStartMaxNs), timerKind(tmGrant, 0))
	}
}

func (h *leaseHolder) timer(kind uint64) {
	k, payload := splitTimer(kind)
	switch k {
	case tmTimeout:
		if lc := h.take(payload); lc != nil {
			h.answered(payload, lc, node.Reply{Err: node.ErrTimeout})
		}
	case tmKeepAlive:
		h.keepAlive(h.cur, payload)
	case tmPut:
		h.putDue = false
		h.put()
	case tmLife:
		h.endOfLife(int(payload))
	case tmGrant:
		if h.w.now < h.w.endNs {
			h.grant(int64(h.w.sc.Leases.TTL))
		}
	}
}

func (h *leaseHolder) reply(seq uint64, rep node.Reply) {
	if lc := h.take(seq); lc != nil {
		h.answered(seq, lc, rep)
	}
}

// answered acts on the answer to a request (a timeout's included).
func (h *leaseHolder) answered(seq uint64, lc *leaseCall, rep node.Reply) {
	w := h.w
	switch lc.kind {
	case callGrant:
		if rep.Err != nil {
			h.failed(rep.Err)
			w.appTimer(h.idx, w.now+regrantMinNs+h.rng.Int64N(regrantMaxNs-regrantMinNs), timerKind(tmGrant, 0))
			return
		}
		h.leases++
		h.cur = h.granted(lc.call, rep, h.leases)
		h.planLife(h.cur)
		h.schedulePut()
	case callKeepAlive:
		h.keepAliveAnswered(lc, rep)
	case callRevoke:
		if h.revokeAnswered(lc, rep) {
			h.gone(lc.session, "revoked")
		}
	case callPut:
		h.putting = false
		i := h.finishOp(seq, lc.op, rep)
		h.noteWrite(i, lc)
		if errors.Is(rep.Err, node.ErrLeaseNotFound) {
			h.gone(lc.session, "a put found it gone")
		} else {
			h.failed(rep.Err)
		}
		h.schedulePut()
	}
}

// planLife draws what becomes of a lease at the end of its life.
func (h *leaseHolder) planLife(s *session) {
	l := h.w.sc.Leases
	life := h.exp(int64(l.Life))
	if r := h.rng.Float64(); r < l.Expire+l.Revoke {
		h.w.appTimer(h.idx, h.w.now+life, timerKind(tmLife, uint64(s.n)))
	}
}

// endOfLife stops keeping the lease alive, or revokes it, as planned.
func (h *leaseHolder) endOfLife(n int) {
	s := h.cur
	if s == nil || s.n != n || s.stopped || h.w.now >= h.w.endNs {
		return
	}
	l := h.w.sc.Leases
	if h.rng.Float64()*(l.Expire+l.Revoke) < l.Expire {
		h.stop(s, "end of its life")
		return
	}
	h.revoke(s)
}

// gone ends the holder's lease s, and asks for another.
func (h *leaseHolder) gone(s *session, why string) {
	if s.gone {
		return
	}
	s.gone = true
	h.w.record(TraceEvent{Kind: "lease", Node: h.name, Detail: fmt.Sprintf("lease %x gone: %s", s.id, why)})
	if h.cur == s {
		h.cur = nil
		h.w.appTimer(h.idx, h.w.now+regrantMinNs+h.rng.Int64N(regrantMaxNs-regrantMinNs), timerKind(tmGrant, 0))
	}
}

func (h *leaseHolder) schedulePut() {
	if h.putDue || h.putting || h.w.now >= h.w.endNs {
		return
	}
	h.putDue = true
	h.w.appTimer(h.idx, h.w.now+h.exp(int64(h.w.sc.Leases.PutEvery)), timerKind(tmPut, 0))
}

// put writes one of the lease's keys, with the lease; it goes on with a
// lease it stopped keeping alive until a put finds it gone.
func (h *leaseHolder) put() {
	w := h.w
	s := h.cur
	if s == nil || w.now >= w.endNs || len(w.history.Operations)+len(w.clients) >= linearizability.OperationsMax/2 {
		return // the next grant starts the loop again
	}
	key := fmt.Sprintf("lease/h%d/%d/%d", h.n, s.n, h.rng.IntN(w.sc.Leases.Keys))
	v := h.newValue(fmt.Sprintf("h%d", h.n))
	h.putting = true
	h.sendOp(callPut, s, linearizability.Operation{Kind: linearizability.KindPut, Key: key, Value: v},
		node.Request{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(v), Lease: s.id}})
}

func (h *leaseHolder) moved(idx int, url string) { h.reach(idx, url) }
func (h *leaseHolder) inFlight() string          { return h.inFlightOp() }
func (h *leaseHolder) finish()                   { h.finishCalls() }
