package sim

import (
	"fmt"
	"math"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/plumbdb/plumb/linearizability"
	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Watchers: simulated applications that watch keys, as clientv3 users do.
//
// A watcher watches one key or prefix of the workload's keys, with its
// options, on one member at a time (a watch, or session). Its calls (create,
// progress request, cancel) cross a client link as the clients' requests
// do; the member's answers to one watch travel as one gRPC stream does:
// each takes a client link's latency, and none overtakes another. A watch
// ends when its member crashes (the stream breaks), when its member has had
// no leader at a check every election timeout (etcd cancels the watches of
// clients that require a leader, as clientv3's users ask), when its next
// revision was compacted, or when the watcher cancels it itself. The
// watcher then watches again on a member its seeded stream picks, after a
// back-off, from the last revision it saw plus one (as clientv3 resumes),
// or from the compaction revision after a compaction (as clientv3's users
// must). Everything a watcher asks for and receives is recorded
// (linearizability.Watcher) and checked after the run (the watch check).

const (
	// watchStartMaxNs: watchers open their first watch within this long of
	// the start, spread out.
	watchStartMaxNs = int64(1e9)
	// watchBackoffMinNs and watchBackoffMaxNs bound the pause before a
	// watcher watches again after its watch ended.
	watchBackoffMinNs = int64(50e6)
	watchBackoffMaxNs = int64(500e6)
)

// watcher is one watching application.
type watcher struct {
	idx       int
	rec       linearizability.Watcher // what it asked for and saw
	req       mvcc.WatchRequest       // its watch, less the start revision
	endpoints []string                // client URLs, one per member, as it knows them
	// from is the revision its next watch asks from: 0 (now) until it has
	// seen one, then the last revision seen plus one.
	from    int64
	session *watchSession // the watch open or being opened; nil between watches
	stopped bool          // the run's bound on recorded events was reached
}

// watchSession is a watcher's side of one watch.
type watchSession struct {
	seq     int // its number, from 1: rec.Sessions[seq-1]
	member  int
	id      mvcc.WatchID
	created bool
}

// watchStream is a member's side of one watch: its answers go out in
// order, each arriving no earlier than the one before.
type watchStream struct {
	watcher, session int
	id               mvcc.WatchID
	arrives          int64 // when the last answer sent on it arrives
}

// watchCallKind names what a watcher's call asks a member.
type watchCallKind uint8

const (
	watchCreate watchCallKind = iota + 1
	watchProgress
	watchCancel
)

// watchCall is a watcher's call on its way to a member (evWatchCall).
type watchCall struct {
	kind             watchCallKind
	watcher, session int
	req              mvcc.WatchRequest // watchCreate
	id               mvcc.WatchID      // watchProgress, watchCancel
}

// watchReply is something on its way back to a watcher (evWatchReply):
// the watch created, a response, or the end of the stream.
type watchReply struct {
	watcher, session int
	created          bool
	id               mvcc.WatchID // created: the member's watch ID
	revision         int64        // created: the member's revision then
	resp             *mvcc.WatchResponse
	closed           string // the stream ended, and why
}

// watcher timer kinds (event.op of evWatchTimer).
const (
	timerProgress = 1
	timerCancel   = 2
)

func (w *world) newWatchers() {
	ws := w.sc.Watchers
	for i := range ws.Count {
		wt := &watcher{idx: i, endpoints: w.endpoints()}
		key, end := w.watchSpan()
		wt.rec = linearizability.Watcher{ID: i + 1, Key: key, End: end, PrevKV: w.rngWatch.Float64() < ws.PrevKV}
		if w.rngWatch.Float64() < ws.Filter {
			if w.rngWatch.IntN(2) == 0 {
				wt.rec.NoPut = true
			} else {
				wt.rec.NoDelete = true
			}
		}
		if w.rngWatch.Float64() < ws.Replay {
			wt.from = 1
		}
		wt.req = mvcc.WatchRequest{Key: []byte(key), PrevKV: wt.rec.PrevKV, NoPut: wt.rec.NoPut, NoDelete: wt.rec.NoDelete}
		if end != "" {
			wt.req.End = []byte(end)
		}
		w.watchers = append(w.watchers, wt)
		w.schedule(&event{at: w.rngWatch.Int64N(watchStartMaxNs), kind: evWatchNext, index: i})
		w.scheduleWatchTimer(wt, timerProgress)
		w.scheduleWatchTimer(wt, timerCancel)
	}
}

// watchSpan draws what a watcher watches: one key, or (with the
// scenario's prefix share) a prefix: one time in four every key, else a
// key's name but its last digit.
func (w *world) watchSpan() (key, end string) {
	k := keyName(w.rngWatch.IntN(w.sc.Workload.Keys))
	if w.rngWatch.Float64() >= w.sc.Watchers.Prefix {
		return k, ""
	}
	prefix := "key-"
	if w.rngWatch.IntN(4) != 0 {
		prefix = k[:len(k)-1]
	}
	return prefix, linearizability.PrefixEnd(prefix)
}

// scheduleWatchTimer schedules a watcher's next progress request or cancel,
// an exponential time away with the scenario's mean (none if 0).
func (w *world) scheduleWatchTimer(wt *watcher, kind uint64) {
	mean := w.sc.Watchers.ProgressEvery
	if kind == timerCancel {
		mean = w.sc.Watchers.CancelEvery
	}
	if mean <= 0 {
		return
	}
	d := int64(math.Min(w.rngWatch.ExpFloat64()*float64(mean), float64(maxThinkNs)))
	w.schedule(&event{at: w.now + d, kind: evWatchTimer, index: wt.idx, op: kind})
}

// maxThinkNs bounds one exponential pause of a client or watcher.
const maxThinkNs = 60e9

// watchNext opens a watcher's next watch on a member its stream picks.
func (w *world) watchNext(wt *watcher) {
	if wt.session != nil || wt.stopped {
		return
	}
	m := w.members[w.rngWatch.IntN(len(w.members))]
	wt.rec.Sessions = append(wt.rec.Sessions, linearizability.WatchSession{Member: m.name, Open: w.now, StartRevision: wt.from})
	wt.session = &watchSession{seq: len(wt.rec.Sessions), member: m.idx}
	req := wt.req
	req.StartRev = wt.from
	w.record(TraceEvent{Kind: "watch", Node: m.name, Detail: fmt.Sprintf("w%d watch %d from %d", wt.rec.ID, wt.session.seq, wt.from)})
	w.sendWatchCall(wt, &watchCall{kind: watchCreate, req: req})
}

// sendWatchCall puts a watcher's call on the network to its session's
// member.
func (w *world) sendWatchCall(wt *watcher, c *watchCall) {
	c.watcher, c.session = wt.idx, wt.session.seq
	w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evWatchCall,
		addr: wt.endpoints[wt.session.member], wcall: c})
}

// watchCallArrives serves a watcher's call at the member holding the
// address. A create finds nobody listening (connection refused), a member
// without a leader (etcd refuses a client that requires one), or a watch.
func (w *world) watchCallArrives(e *event) {
	c := e.wcall
	idx, ok := w.byAddr[e.addr]
	if !ok || !w.members[idx].alive() {
		if c.kind == watchCreate {
			w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evWatchReply,
				wreply: &watchReply{watcher: c.watcher, session: c.session, closed: errConnRefused.Error()}})
		}
		return
	}
	m := w.members[idx]
	if w.busy(m) {
		w.deferInput(m, e)
		return
	}
	switch c.kind {
	case watchCreate:
		w.createWatch(m, c)
	case watchProgress:
		if st := m.stream(c); st != nil {
			m.node.RequestWatchProgress(st.id)
		}
	case watchCancel:
		if st := m.stream(c); st != nil {
			m.node.CancelWatch(st.id)
			m.dropStream(st)
		}
	}
	w.drive(m)
}

func (w *world) createWatch(m *member, c *watchCall) {
	reply := &watchReply{watcher: c.watcher, session: c.session}
	if m.lead == 0 {
		reply.closed = node.ErrNoLeader.Error()
		w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evWatchReply, wreply: reply})
		return
	}
	_, err := m.node.AuthorizeWatch(w.appCreds(), c.req.Key, c.req.End)
	w.noteAppAuth(err, "a watcher's watch")
	var id mvcc.WatchID
	if err == nil {
		id, err = m.node.Watch(c.req)
	}
	if err != nil {
		reply.closed = err.Error()
		w.schedule(&event{at: w.now + w.net.clientDelay(), kind: evWatchReply, wreply: reply})
		return
	}
	st := &watchStream{watcher: c.watcher, session: c.session, id: id}
	m.streams = append(m.streams, st)
	reply.created, reply.id, reply.revision = true, id, m.node.Status().Revision
	w.streamSend(st, reply)
}

// stream finds the member's stream a call names: the watch ID alone could
// name another watcher's watch after a restart.
func (m *member) stream(c *watchCall) *watchStream {
	for _, st := range m.streams {
		if st.watcher == c.watcher && st.session == c.session && st.id == c.id {
			return st
		}
	}
	return nil
}

func (m *member) dropStream(st *watchStream) {
	for i, s := range m.streams {
		if s == st {
			m.streams = append(m.streams[:i], m.streams[i+1:]...)
			return
		}
	}
}

// streamSend sends an answer on a watch stream: a client link's latency,
// but never before the answer sent before it.
func (w *world) streamSend(st *watchStream, r *watchReply) {
	st.arrives = max(w.now+w.net.clientDelay(), st.arrives)
	w.schedule(&event{at: st.arrives, kind: evWatchReply, wreply: r})
}

// watchOutput sends what a member's watchers have to say (Output.Watch)
// down their streams. A response for a watch whose stream is gone (the
// watcher canceled it, the member dropped it) goes nowhere.
func (w *world) watchOutput(m *member, resps []mvcc.WatchResponse) {
	for i := range resps {
		r := &resps[i]
		var st *watchStream
		for _, s := range m.streams {
			if s.id == r.WatchID {
				st = s
				break
			}
		}
		if st == nil {
			continue
		}
		w.streamSend(st, &watchReply{watcher: st.watcher, session: st.session, resp: r})
		if r.Canceled {
			m.dropStream(st)
		}
	}
}

// closeStreams ends every watch stream of a member, telling each watcher
// why after whatever the stream still carried.
func (w *world) closeStreams(m *member, why string) {
	for _, st := range m.streams {
		w.streamSend(st, &watchReply{watcher: st.watcher, session: st.session, closed: why})
	}
	clear(m.streams)
	m.streams = m.streams[:0]
}

// monitorLeader is etcd's check, every election timeout, that a member
// knows a leader: the watches of clients that require one are canceled
// when it does not, so that a watcher cut off with a minority moves to a
// member that has the cluster's news.
func (w *world) monitorLeader(m *member) {
	m.ticks++
	if m.ticks%w.electionTicks != 0 || m.lead != 0 || len(m.streams) == 0 {
		return
	}
	w.record(TraceEvent{Kind: "watch", Node: m.name, Detail: fmt.Sprintf("no leader: %d watches canceled", len(m.streams))})
	for _, st := range m.streams {
		m.node.CancelWatch(st.id)
	}
	w.closeStreams(m, node.ErrNoLeader.Error())
}

// watchReplyArrives records what reached a watcher, unless it belongs to
// a watch the watcher has left.
func (w *world) watchReplyArrives(r *watchReply) {
	wt := w.watchers[r.watcher]
	s := wt.session
	if s == nil || s.seq != r.session {
		return
	}
	rec := &wt.rec.Sessions[s.seq-1]
	switch {
	case r.closed != "":
		w.endWatch(wt, r.closed)
	case r.created:
		s.created, s.id = true, r.id
		rec.Created = r.revision
		if wt.from == 0 {
			wt.from = r.revision + 1
		}
		w.record(TraceEvent{Kind: "watch", Node: w.members[s.member].name,
			Detail: fmt.Sprintf("w%d watch %d created at %d", wt.rec.ID, s.seq, r.revision)})
	default:
		w.watchResponse(wt, rec, r.resp)
	}
}

// watchResponse records one response and moves the watcher's next start.
func (w *world) watchResponse(wt *watcher, rec *linearizability.WatchSession, r *mvcc.WatchResponse) {
	if w.watchEvents+len(r.Events) > linearizability.WatchEventsMax {
		w.stopWatcher(wt)
		return
	}
	w.watchEvents += len(r.Events)
	resp := linearizability.WatchResponse{At: w.now, Revision: r.Revision, Canceled: r.Canceled, CompactRevision: r.CompactRevision}
	for _, ev := range r.Events {
		resp.Events = append(resp.Events, watchEvent(ev))
	}
	rec.Responses = append(rec.Responses, resp)
	w.record(TraceEvent{Kind: "watch", Node: w.members[wt.session.member].name, Detail: describeWatchResponse(wt, &resp)})
	switch {
	case len(r.Events) > 0:
		wt.from = max(wt.from, r.Events[len(r.Events)-1].Kv.ModRevision+1)
	case r.CompactRevision != 0:
		// Its next revision is gone: what was lost stays lost, and the
		// watcher starts again from what the compaction kept.
		wt.from = r.CompactRevision
		w.endWatch(wt, fmt.Sprintf("compacted at %d", r.CompactRevision))
	case r.Canceled:
		w.endWatch(wt, "canceled by the member")
	default:
		wt.from = max(wt.from, r.Revision+1) // a progress notification
	}
}

// watchEvent converts an event as the node gives it (shared, read-only)
// into the record's form.
func watchEvent(ev *mvccpb.Event) linearizability.WatchEvent {
	kv := ev.Kv
	out := linearizability.WatchEvent{Type: linearizability.KindPut, Key: string(kv.Key), Value: string(kv.Value),
		ModRevision: kv.ModRevision, CreateRevision: kv.CreateRevision, Version: kv.Version}
	if ev.Type == mvccpb.DELETE {
		out.Type = linearizability.KindDelete
	}
	if p := ev.PrevKv; p != nil {
		out.PrevKV = &linearizability.KV{Key: string(p.Key), Value: string(p.Value),
			ModRevision: p.ModRevision, CreateRevision: p.CreateRevision, Version: p.Version}
	}
	return out
}

func describeWatchResponse(wt *watcher, r *linearizability.WatchResponse) string {
	s := fmt.Sprintf("w%d watch %d: ", wt.rec.ID, wt.session.seq)
	switch {
	case r.CompactRevision != 0:
		return s + fmt.Sprintf("compacted at %d", r.CompactRevision)
	case r.IsProgress():
		return s + fmt.Sprintf("progress @%d", r.Revision)
	}
	return s + fmt.Sprintf("%d events @%d..%d", len(r.Events), r.Events[0].ModRevision, r.Revision)
}

// endWatch closes the watcher's watch and schedules the next one.
func (w *world) endWatch(wt *watcher, why string) {
	s := wt.session
	rec := &wt.rec.Sessions[s.seq-1]
	rec.End, rec.Close = why, w.now
	wt.session = nil
	w.record(TraceEvent{Kind: "watch", Node: w.members[s.member].name, Detail: fmt.Sprintf("w%d watch %d ended: %s", wt.rec.ID, s.seq, why)})
	backoff := watchBackoffMinNs + w.rngWatch.Int64N(watchBackoffMaxNs-watchBackoffMinNs)
	w.schedule(&event{at: w.now + backoff, kind: evWatchNext, index: wt.idx})
}

// stopWatcher ends a watcher for good: the run has recorded as many
// events as its check takes.
func (w *world) stopWatcher(wt *watcher) {
	if wt.session.created {
		w.sendWatchCall(wt, &watchCall{kind: watchCancel, id: wt.session.id})
	}
	w.endWatch(wt, fmt.Sprintf("stopped: the run recorded %d watch events, its bound", w.watchEvents))
	wt.stopped = true
}

// watchTimer is a watcher's progress request or cancel coming due; while
// the scenario runs it schedules the next.
func (w *world) watchTimer(e *event) {
	if w.now >= w.endNs {
		return
	}
	wt := w.watchers[e.index]
	w.scheduleWatchTimer(wt, e.op)
	s := wt.session
	if s == nil || !s.created {
		return
	}
	if e.op == timerProgress {
		w.sendWatchCall(wt, &watchCall{kind: watchProgress, id: s.id})
		return
	}
	w.sendWatchCall(wt, &watchCall{kind: watchCancel, id: s.id})
	w.endWatch(wt, "canceled by the watcher")
}

// watchRecords returns every watcher's record, for the history.
func (w *world) watchRecords() []linearizability.Watcher {
	out := make([]linearizability.Watcher, len(w.watchers))
	for i, wt := range w.watchers {
		out[i] = wt.rec
	}
	return out
}
