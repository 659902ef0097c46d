package server

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/plumbdb/plumb/node"
	"github.com/plumbdb/plumb/node/mvcc"
)

// Bounds of a watch stream.
const (
	// watchSendQueue is how many responses a stream holds for its client.
	// Events take it up to watchSendQueue-watchCtrlReserve; the rest is
	// kept for created, canceled and progress responses, and a stream
	// whose client leaves even those unread is ended.
	watchSendQueue   = 128
	watchCtrlReserve = 16
	// watchProgressIntervalDefault and watchProgressIntervalMin are etcd's
	// default and least period of progress responses to watchers created
	// with progress_notify (--watch-progress-notify-interval).
	watchProgressIntervalDefault = 10 * time.Minute
	watchProgressIntervalMin     = 100 * time.Millisecond
	// watchProgressJitterDivisor: each stream adds up to this fraction of
	// the period, at random, as etcd does, so that streams opened together
	// (a client that restarts) do not all report together.
	watchProgressJitterDivisor = 10
)

// invalidWatchID is clientv3.InvalidWatchID: the ID of a create etcd
// refused, and of a progress response for the whole stream.
const invalidWatchID = -1

// Etcd's texts for the create errors its watch stream reports itself.
var (
	errWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	errWatchStreamFull    = status.Error(codes.ResourceExhausted, "etcdserver: watch stream fell behind: too many responses unread")
)

// watchServer is etcd's Watch service. Each call is one stream with any
// number of watchers; the node's watchers serve them. The loop owns every
// watcher's route (loop.watches): it creates and cancels watchers for the
// stream (through exec) and hands each of their responses to the stream's
// send queue, never waiting for a client: a watcher whose stream is full is
// handed back to the node (DeferWatch) to catch up from the history later.
type watchServer struct {
	pb.UnimplementedWatchServer
	l               *loop
	maxRequestBytes int
	// progressInterval is --watch-progress-notify-interval: 0 or less
	// means watchProgressIntervalDefault, and less than
	// watchProgressIntervalMin is raised to it, as etcd does.
	progressInterval time.Duration
}

// watchStream is one Watch call. Everything but out and ended is the
// loop's.
type watchStream struct {
	out   chan *pb.WatchResponse // bounded by watchSendQueue
	ended chan struct{}          // closed by the loop: the stream fell behind

	ids    map[int64]mvcc.WatchID // stream watch ID to node watch ID
	nextID int64                  // the next automatic watch ID to try
	gone   bool                   // ended: the loop sends it nothing more
	// progressWait are the watchers a stream-level progress request waits
	// for; progressRev is the least revision they reported.
	progressWait map[mvcc.WatchID]bool
	progressRev  int64
	// creds say who opened the stream; its watchers read as that user.
	creds node.Credentials
}

// watchRoute is one node watcher: the stream and the ID its client knows
// it by.
type watchRoute struct {
	s        *watchStream
	id       int64
	fragment bool
	// next is the first revision not yet queued for the client, where the
	// watcher resumes if the stream is full.
	next int64
	// progressNotify asks for etcd's periodic progress responses; quiet
	// says no events were queued since the last period.
	progressNotify, quiet bool
	// user and the watched range, for the permission check at every
	// delivery (see routeWatch).
	user     string
	key, end []byte
}

func (w *watchServer) Watch(gs pb.Watch_WatchServer) error {
	s := &watchStream{
		out:   make(chan *pb.WatchResponse, watchSendQueue),
		ended: make(chan struct{}),
		ids:   map[int64]mvcc.WatchID{},
	}
	ctx := gs.Context()
	if w.l.auth != nil {
		s.creds = w.l.auth.credentials(ctx)
	}
	w.l.metrics.watchStreams.Inc()
	defer w.l.metrics.watchStreams.Dec()
	defer func() {
		// Every watcher of the stream goes with it.
		_ = w.l.exec(context.Background(), func(n *node.Node) { w.l.endStream(n, s) })
	}()
	recvErr := make(chan error, 1)
	go func() { recvErr <- w.recv(ctx, gs, s) }()
	ticker := time.NewTicker(w.streamProgressInterval())
	defer ticker.Stop()
	for {
		select {
		case wr := <-s.out:
			if err := w.send(gs, wr); err != nil {
				return err
			}
		case err := <-recvErr:
			if err != nil {
				return err
			}
			recvErr = nil // the client closed its side: keep sending
		case <-ticker.C:
			if err := w.l.exec(ctx, func(n *node.Node) { w.l.notifyProgress(n, s) }); err != nil {
				return toGRPC(err)
			}
		case <-s.ended:
			return errWatchStreamFull
		case <-w.l.done:
			return toGRPC(node.ErrStopped)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// streamProgressInterval is the period of one stream's progress
// responses: the setting within etcd's bounds, plus the stream's jitter.
func (w *watchServer) streamProgressInterval() time.Duration {
	d := w.progressInterval
	switch {
	case d <= 0:
		d = watchProgressIntervalDefault
	case d < watchProgressIntervalMin:
		d = watchProgressIntervalMin
	}
	return d + rand.N(d/watchProgressJitterDivisor)
}

func (w *watchServer) recv(ctx context.Context, gs pb.Watch_WatchServer, s *watchStream) error {
	for {
		req, err := gs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var fn func(*node.Node)
		switch {
		case req.GetCreateRequest() != nil:
			cr := req.GetCreateRequest()
			fn = func(n *node.Node) { w.l.createWatch(n, s, cr) }
		case req.GetCancelRequest() != nil:
			id := req.GetCancelRequest().GetWatchId()
			fn = func(n *node.Node) { w.l.cancelWatch(n, s, id) }
		case req.GetProgressRequest() != nil:
			fn = func(n *node.Node) { w.l.requestProgress(n, s) }
		default:
			continue // as etcd: an unknown request does not end the stream
		}
		if err := w.l.exec(ctx, fn); err != nil {
			return toGRPC(err)
		}
	}
}

// send sends wr, in fragments if its watcher asked for them and it is
// larger than --max-request-bytes.
func (w *watchServer) send(gs pb.Watch_WatchServer, wr *pb.WatchResponse) error {
	start := time.Now()
	defer func() { w.l.metrics.timings.observeSend(wr, time.Since(start)) }()
	if !wr.Fragment {
		return gs.Send(wr)
	}
	for _, f := range fragments(wr, w.maxRequestBytes) {
		if err := gs.Send(f); err != nil {
			return err
		}
	}
	return nil
}

// fragments splits wr as etcd's sendFragments does: when it is at least
// maxBytes and holds two events or more, into responses of as many events
// as fit below maxBytes (at least one each), every one but the last marked
// Fragment. wr.Fragment only says its watcher asked for fragments.
func fragments(wr *pb.WatchResponse, maxBytes int) []*pb.WatchResponse {
	wr.Fragment = false
	if proto.Size(wr) < maxBytes || len(wr.Events) < 2 {
		return []*pb.WatchResponse{wr}
	}
	var out []*pb.WatchResponse
	for idx := 0; idx < len(wr.Events); {
		cur := &pb.WatchResponse{
			Header: wr.Header, WatchId: wr.WatchId, Created: wr.Created, Canceled: wr.Canceled,
			CompactRevision: wr.CompactRevision, CancelReason: wr.CancelReason,
			Fragment: true, Events: make([]*mvccpb.Event, 0),
		}
		for _, ev := range wr.Events[idx:] {
			cur.Events = append(cur.Events, ev)
			if len(cur.Events) > 1 && proto.Size(cur) >= maxBytes {
				cur.Events = cur.Events[:len(cur.Events)-1]
				break
			}
			idx++
		}
		cur.Fragment = idx < len(wr.Events)
		out = append(out, cur)
	}
	return out
}

// The loop's side: these run on its goroutine.

func (l *loop) watchHeader(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: l.n.ClusterID(), MemberId: l.n.ID(), Revision: rev, RaftTerm: l.watchTerm}
}

// queue hands wr to s's client: an event response only while there is
// room below the control reserve (false otherwise), a control response
// while there is any room at all, or the stream ends.
func (l *loop) queue(n *node.Node, s *watchStream, wr *pb.WatchResponse, ctrl bool) bool {
	if s.gone {
		return false
	}
	if !ctrl && len(s.out) >= watchSendQueue-watchCtrlReserve {
		return false
	}
	select {
	case s.out <- wr:
		return true
	default:
		l.endStream(n, s)
		close(s.ended)
		return false
	}
}

func (l *loop) createWatch(n *node.Node, s *watchStream, cr *pb.WatchCreateRequest) {
	if s.gone {
		return // the stream ended while the request was on its way
	}
	st := n.Status()
	refuse := func(reason string) {
		l.queue(n, s, &pb.WatchResponse{Header: l.watchHeader(st.Revision), WatchId: invalidWatchID,
			Created: true, Canceled: true, CancelReason: reason}, true)
	}
	if cr.StartRevision < 0 {
		refuse(rpctypes.ErrCompacted.Error())
		return
	}
	user, err := n.AuthorizeWatch(s.creds, cr.Key, cr.RangeEnd)
	if err != nil {
		// etcd answers every refusal of a watch by authorization so.
		l.auth.count("/etcdserverpb.Watch/Watch", toGRPC(err))
		refuse(rpctypes.ErrGRPCPermissionDenied.Error())
		return
	}
	id := cr.WatchId
	if id == 0 { // etcd's AutoWatchID
		for s.hasID(s.nextID) {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if s.hasID(id) {
		refuse(errWatcherDuplicateID.Error())
		return
	}
	req := mvcc.WatchRequest{Key: cr.Key, End: cr.RangeEnd, StartRev: cr.StartRevision, PrevKV: cr.PrevKv}
	for _, f := range cr.Filters {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			req.NoPut = true
		case pb.WatchCreateRequest_NODELETE:
			req.NoDelete = true
		}
	}
	nid, err := n.Watch(req)
	if err != nil {
		refuse(err.Error())
		return
	}
	next := cr.StartRevision
	if next == 0 {
		next = st.Revision + 1
	}
	s.ids[id] = nid
	l.watches[nid] = &watchRoute{s: s, id: id, fragment: cr.Fragment, next: next, progressNotify: cr.ProgressNotify, quiet: true,
		user: user, key: cr.Key, end: cr.RangeEnd}
	l.queue(n, s, &pb.WatchResponse{Header: l.watchHeader(st.Revision), WatchId: id, Created: true}, true)
}

func (s *watchStream) hasID(id int64) bool {
	_, ok := s.ids[id]
	return ok
}

func (l *loop) cancelWatch(n *node.Node, s *watchStream, id int64) {
	nid, ok := s.ids[id]
	if !ok {
		return // as etcd: an unknown ID gets no answer
	}
	l.dropWatch(n, nid)
	l.queue(n, s, &pb.WatchResponse{Header: l.watchHeader(n.Status().Revision), WatchId: id, Canceled: true}, true)
}

// dropWatch cancels a node watcher and forgets its route.
func (l *loop) dropWatch(n *node.Node, nid mvcc.WatchID) {
	r, ok := l.watches[nid]
	if !ok {
		return
	}
	n.CancelWatch(nid)
	delete(l.watches, nid)
	delete(r.s.ids, r.id)
	l.progressed(n, r.s, nid)
}

// progressed notes that a stream-level progress request need not wait for
// watcher nid any more, and answers it if nothing else is left.
func (l *loop) progressed(n *node.Node, s *watchStream, nid mvcc.WatchID) {
	if s.progressWait[nid] {
		delete(s.progressWait, nid)
		l.maybeProgress(n, s)
	}
}

// endStream cancels every watcher of s; it gets nothing more.
func (l *loop) endStream(n *node.Node, s *watchStream) {
	if s.gone {
		return
	}
	s.gone = true
	for _, nid := range s.ids {
		n.CancelWatch(nid)
		delete(l.watches, nid)
	}
	s.ids = map[int64]mvcc.WatchID{}
	s.progressWait = nil
}

// requestProgress is etcd's stream-level progress request: one response
// with WatchId -1 once every watcher of the stream is synced, at a
// revision each has every event up to; none on a stream without watchers,
// as etcd.
func (l *loop) requestProgress(n *node.Node, s *watchStream) {
	if s.progressWait != nil || len(s.ids) == 0 {
		return // one is on its way already, or no watcher to speak for
	}
	s.progressWait = map[mvcc.WatchID]bool{}
	s.progressRev = n.Status().Revision
	ids := make([]mvcc.WatchID, 0, len(s.ids))
	for _, nid := range s.ids {
		s.progressWait[nid] = true
		ids = append(ids, nid)
	}
	n.RequestWatchProgress(ids...)
	l.maybeProgress(n, s)
}

func (l *loop) maybeProgress(n *node.Node, s *watchStream) {
	if s.progressWait == nil || len(s.progressWait) > 0 {
		return
	}
	s.progressWait = nil
	l.queue(n, s, &pb.WatchResponse{Header: l.watchHeader(s.progressRev), WatchId: invalidWatchID}, true)
}

// notifyProgress asks for etcd's periodic progress responses for s's
// progress_notify watchers that had no events since the last period.
func (l *loop) notifyProgress(n *node.Node, s *watchStream) {
	var ids []mvcc.WatchID
	for _, nid := range s.ids {
		r := l.watches[nid]
		if r.progressNotify && r.quiet {
			ids = append(ids, nid)
		}
		r.quiet = true
	}
	if len(ids) > 0 {
		n.RequestWatchProgress(ids...)
	}
}

// routeWatch hands the node's watch responses to their streams.
func (l *loop) routeWatch(n *node.Node, resps []mvcc.WatchResponse) {
	if len(resps) == 0 {
		return
	}
	var deferred map[mvcc.WatchID]bool
	for i := range resps {
		wr := &resps[i]
		l.watchEventsTaken += uint64(len(wr.Events))
		r, ok := l.watches[wr.WatchID]
		if !ok || deferred[wr.WatchID] {
			continue
		}
		if wr.Canceled {
			// The node canceled it already (compacted): forget its route
			// once the client is told.
			delete(l.watches, wr.WatchID)
			delete(r.s.ids, r.id)
			// etcd's compaction cancel carries no revision in its header.
			l.queue(n, r.s, &pb.WatchResponse{Header: l.watchHeader(0), WatchId: r.id,
				Canceled: true, CompactRevision: wr.CompactRevision}, true)
			l.progressed(n, r.s, wr.WatchID)
			continue
		}
		if len(wr.Events) > 0 && n.AuthEnabled() {
			// Stronger than etcd, which checks only when a watch is
			// created: a watcher whose user has lost the permission to
			// read its range since (a role revoked, the user deleted,
			// authentication enabled under it) gets no more events.
			if err := n.MayStillRead(r.user, r.key, r.end); err != nil {
				l.dropWatch(n, wr.WatchID)
				l.auth.count("/etcdserverpb.Watch/Watch", rpctypes.ErrGRPCPermissionDenied)
				l.queue(n, r.s, &pb.WatchResponse{Header: l.watchHeader(wr.Revision), WatchId: r.id,
					Canceled: true, CancelReason: rpctypes.ErrGRPCPermissionDenied.Error()}, true)
				continue
			}
		}
		if wr.IsProgress() && r.s.progressWait[wr.WatchID] {
			r.s.progressRev = min(r.s.progressRev, wr.Revision)
			r.next = max(r.next, wr.Revision+1)
			l.progressed(n, r.s, wr.WatchID)
			if !r.progressNotify {
				continue
			}
		}
		out := &pb.WatchResponse{Header: l.watchHeader(wr.Revision), WatchId: r.id, Events: wr.Events, Fragment: r.fragment}
		if !l.queue(n, r.s, out, false) {
			if r.s.gone {
				continue
			}
			if deferred == nil {
				deferred = map[mvcc.WatchID]bool{}
			}
			deferred[wr.WatchID] = true
			if err := n.DeferWatch(wr.WatchID, r.next); err != nil {
				l.logger.Error("could not hand a watcher of a full stream back; it is canceled", "err", err)
				l.dropWatch(n, wr.WatchID)
				l.queue(n, r.s, &pb.WatchResponse{Header: l.watchHeader(wr.Revision), WatchId: r.id, Canceled: true, CancelReason: err.Error()}, true)
				continue
			}
			if r.s.progressWait[wr.WatchID] {
				n.RequestWatchProgress(wr.WatchID) // what was owed went with the deferral
			}
			continue
		}
		r.next = max(r.next, wr.Revision+1)
		if len(wr.Events) > 0 {
			r.quiet = false
		}
	}
}
