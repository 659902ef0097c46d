package mvcc

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// The watch hub: etcd's watchable store (server/storage/mvcc/
// watchable_store.go) over a Store, driven by calls instead of goroutines
// and channels.
//
// A watcher is SYNCED when every event it may still receive is published to
// it as the node commits: Write collects each transaction's events as it
// runs (dropping them if the transaction fails), and Committed, which the
// node calls after the batch's backend Commit, hands them to the synced
// watchers, one response per revision. A watcher is UNSYNCED when it is
// behind: it started in the past, its undelivered events passed
// WatchLimits.PendingEvents (a slow watcher, etcd's victim), or its driver
// handed it back with Defer. WatchResponses catches unsynced watchers up
// from the history in the backend, a bounded chunk per call, and moves
// them to the synced set once they reach the committed revision; one whose
// next revision was compacted is canceled with the compaction revision.
//
// The promise, to each watcher: its responses carry every event of its
// span (after its filters) from its start revision on, in revision order,
// each revision whole in one response, no revision twice, none skipped and
// none from the future (not yet committed); a progress response is never
// ahead of its events. Memory is bounded by the limits whatever the
// driver does, and publishing never blocks or fails the apply path.

// WatchID names a watcher of a Store. IDs are never reused by a Store, so a
// stale ID never names another watcher.
type WatchID int64

// WatchRequest is what a watcher watches.
type WatchRequest struct {
	// Key and End are etcd's key and range_end: End empty names Key alone,
	// "\x00" every key from Key on, anything else [Key, End). An empty Key
	// is "\x00", the smallest key, as etcd's server makes it.
	Key, End []byte
	// StartRev is the first revision to deliver: 0 for the next one, a
	// revision at or below the current one to replay the history from it,
	// or a future one.
	StartRev int64
	// PrevKV asks for each event's previous version of its key (the key as
	// of the event's revision - 1), as etcd's server reads it; it is
	// omitted when that revision is compacted, and for an event that
	// creates the key, as etcd omits it.
	PrevKV bool
	// NoPut and NoDelete are etcd's filters: events of that type are never
	// delivered (the watcher still moves past them).
	NoPut, NoDelete bool
}

// WatchResponse is one delivery to one watcher.
type WatchResponse struct {
	WatchID WatchID
	// Revision is the revision the watcher is current to: it has been
	// given every event of its span up to and including Revision.
	Revision int64
	// Events hold every event of one or more whole revisions, in revision
	// order; never part of a revision. They and their KeyValues are shared
	// between watchers: read them, never modify them.
	Events []*mvccpb.Event
	// CompactRevision is set when the watcher's next revision was
	// compacted away: the watcher is canceled (Canceled is set) and gone.
	CompactRevision int64
	Canceled        bool
}

// IsProgress reports whether r is a progress notification: no events, not
// a cancellation.
func (r *WatchResponse) IsProgress() bool {
	return len(r.Events) == 0 && !r.Canceled
}

// WatchLimits bound the watch hub's memory and the work of one
// WatchResponses call.
type WatchLimits struct {
	// Watchers is the most watchers a Store holds at once; Watch fails with
	// ErrTooManyWatchers past it.
	Watchers int
	// PendingEvents is how many undelivered events a synced watcher may
	// hold: the revision that would take it past the bound is not added,
	// and the watcher becomes unsynced to catch up from the history later
	// (a revision alone is always taken, so the bound is exceeded by at
	// most one revision's events).
	PendingEvents int
	// SyncRevisions, SyncEvents and SyncWatchers bound one catch-up from
	// the history (one per WatchResponses call): at most SyncRevisions
	// revisions, stopping after the revision that reaches SyncEvents
	// events, for at most SyncWatchers unsynced watchers (those furthest
	// behind first).
	SyncRevisions, SyncEvents, SyncWatchers int
}

// DefaultWatchLimits are etcd's where etcd has them (512 watchers and 1000
// revisions per synchronization; etcd bounds a slow watcher by its
// channel's 128 responses, plumb by events). etcd has no bound on a
// member's watchers; plumb's is well above what etcd's users run (a
// Kubernetes API server keeps a few thousand) and what etcd's benchmark
// tool opens (10,000 in bench/etcd.sh), and keeps a runaway client from
// exhausting the member's memory.
var DefaultWatchLimits = WatchLimits{
	Watchers:      100_000,
	PendingEvents: 1024,
	SyncRevisions: 1000,
	SyncEvents:    1000,
	SyncWatchers:  512,
}

func (l WatchLimits) validate() error {
	if l.Watchers < 1 || l.PendingEvents < 1 || l.SyncRevisions < 1 || l.SyncEvents < 1 || l.SyncWatchers < 1 {
		return fmt.Errorf("mvcc: watch limits must all be at least 1: %+v", l)
	}
	return nil
}

// Errors of Watch and Defer.
var (
	// ErrEmptyWatcherRange: the range end is not after the key (etcd's
	// message; its server answers the create with canceled and this reason).
	ErrEmptyWatcherRange = errors.New("mvcc: watcher range is empty")
	// ErrTooManyWatchers: the Store holds WatchLimits.Watchers already.
	ErrTooManyWatchers = errors.New("mvcc: too many watchers")
	// ErrNegativeStartRev: a watch from a negative revision. etcd's server
	// refuses it at creation with its compacted error as the cancel reason
	// ("etcdserver: mvcc: required revision has been compacted").
	ErrNegativeStartRev = errors.New("mvcc: watch start revision is negative")
	// ErrWatcherNotFound: no watcher has this ID (canceled, or compacted).
	ErrWatcherNotFound = errors.New("mvcc: watcher not found")
	// ErrDeferAhead: Defer was asked to skip revisions the watcher has not
	// been given.
	ErrDeferAhead = errors.New("mvcc: defer past the watcher's next revision")
)

type watcher struct {
	id       WatchID
	key, end []byte // the index's span convention (see treeIndex)
	prevKV   bool
	noPut    bool
	noDelete bool

	start int64 // the first revision it may be given
	// next is the first revision the watcher may still be given. For a
	// synced watcher the hub does not move it on each publish: its
	// effective next is max(next, publishedRev+1) (see effectiveNext).
	next   int64
	synced bool
	gone   bool // canceled by compaction: removed after the drain

	pending       []WatchResponse // ready for the next drain, in order
	pendingEvents int
	building      int64 // the revision whose response publish is building
	progress      bool  // a progress response is owed once synced
}

func (w *watcher) matches(key []byte) bool {
	if w.end == nil {
		return bytes.Equal(key, w.key)
	}
	return bytes.Compare(key, w.key) >= 0 && (len(w.end) == 0 || bytes.Compare(key, w.end) < 0)
}

func (w *watcher) filtered(ev *mvccpb.Event) bool {
	return (ev.Type == mvccpb.PUT && w.noPut) || (ev.Type == mvccpb.DELETE && w.noDelete)
}

// watchHub is the Store's watchers. The map serves lookups by ID only;
// everything that leaves the hub goes through all, in ID order.
type watchHub struct {
	limits WatchLimits
	nextID WatchID
	byID   map[WatchID]*watcher
	all    []*watcher // every watcher, in ID order

	// The synced watchers, by the keys they match: single-key watchers by
	// key, the others in a list scanned per event. Orders inside these do
	// not matter: each watcher's responses are its own, and drains go by
	// all.
	keyed  map[string][]*watcher
	ranged []*watcher

	// staged are the events of the committed transactions of the batch in
	// progress, in revision order, for Committed to publish.
	staged []*mvccpb.Event
	// publishedRev is the last revision whose events were published: the
	// batch holding it is committed (the revision the hub is current to).
	publishedRev int64
	// unstagedThrough is the last revision whose events were not staged
	// because there was no watcher then: a watcher may join the synced set
	// only past it and past publishedRev.
	unstagedThrough int64

	touched []*watcher // scratch for publish
	// slots is a chunk of memory the responses of publish take their first
	// event from, one allocation for many (see eventSlot).
	slots []*mvccpb.Event

	// skipAfterCatchUp is the simulator's planted bug (see
	// PlantWatchSkipAfterCatchUp); false everywhere else.
	skipAfterCatchUp bool
}

// eventSlotsChunk is how many one-event slots one allocation holds.
const eventSlotsChunk = 1024

// eventSlot returns an empty event slice with room for one event: most
// responses of a synced watcher hold one. A response with more grows out of
// its slot as any slice does.
func (h *watchHub) eventSlot() []*mvccpb.Event {
	if len(h.slots) == 0 {
		h.slots = make([]*mvccpb.Event, eventSlotsChunk)
	}
	slot := h.slots[:0:1]
	h.slots = h.slots[1:]
	return slot
}

func newWatchHub(rev int64) *watchHub {
	return &watchHub{
		limits:          DefaultWatchLimits,
		byID:            make(map[WatchID]*watcher),
		keyed:           make(map[string][]*watcher),
		publishedRev:    rev,
		unstagedThrough: rev,
	}
}

// syncFloor is the last revision that synced watchers may not be given by
// publishing: a watcher joins the synced set only with next above it.
func (h *watchHub) syncFloor() int64 { return max(h.publishedRev, h.unstagedThrough) }

func (h *watchHub) effectiveNext(w *watcher) int64 {
	if w.synced {
		return max(w.next, h.publishedRev+1)
	}
	return w.next
}

// SetWatchLimits replaces the watch hub's limits (DefaultWatchLimits until
// then). Watchers already held beyond a lower Watchers stay.
func (s *Store) SetWatchLimits(l WatchLimits) error {
	if err := l.validate(); err != nil {
		return err
	}
	s.watch.limits = l
	return nil
}

// Watch creates a watcher and returns its ID. A StartRev of 0 starts at the
// revision after the current one (Rev()+1); a StartRev at or below the last
// committed revision makes the watcher replay the history from there (or,
// if that revision is compacted, be canceled at the next WatchResponses
// with the compaction revision, as etcd answers it).
func (s *Store) Watch(r WatchRequest) (WatchID, error) {
	h := s.watch
	key := r.Key
	if len(key) == 0 {
		key = []byte{0}
	}
	end := spanEnd(r.End)
	switch {
	case len(end) != 0 && bytes.Compare(key, end) >= 0:
		return 0, ErrEmptyWatcherRange
	case r.StartRev < 0:
		return 0, ErrNegativeStartRev
	case len(h.all) >= h.limits.Watchers:
		return 0, fmt.Errorf("%w (%d)", ErrTooManyWatchers, h.limits.Watchers)
	}
	w := &watcher{
		id:       h.nextID,
		key:      bytes.Clone(key),
		prevKV:   r.PrevKV,
		noPut:    r.NoPut,
		noDelete: r.NoDelete,
		next:     r.StartRev,
	}
	if end != nil {
		w.end = append([]byte{}, end...) // an empty end stays non-nil: from key on
	}
	if w.next == 0 {
		w.next = s.rev + 1
	}
	w.start = w.next
	h.nextID++
	h.byID[w.id] = w
	h.all = append(h.all, w)
	if w.next > h.syncFloor() {
		h.join(w)
	}
	return w.id, nil
}

// CancelWatch removes a watcher and whatever it had not been given; false
// if there is none with this ID.
func (s *Store) CancelWatch(id WatchID) bool {
	w := s.watch.byID[id]
	if w == nil || w.gone {
		return false
	}
	s.watch.remove(w)
	return true
}

// Defer hands a watcher back for a driver that could not deliver its
// responses (its stream is full): from is the first revision the driver did
// not deliver, the Revision of the last response it delivered plus one (or
// the watcher's start revision if it delivered none). What the watcher had
// pending is dropped, and it catches up from the history from there,
// through later WatchResponses calls, as a slow watcher does: nothing is
// lost and nothing is given twice, if from is right. ErrDeferAhead if from
// is past the watcher's next revision; a from before the watcher's start
// is its start.
func (s *Store) Defer(id WatchID, from int64) error {
	h := s.watch
	w := h.byID[id]
	if w == nil || w.gone {
		return ErrWatcherNotFound
	}
	if next := h.effectiveNext(w); from > next {
		return fmt.Errorf("%w: %d > %d", ErrDeferAhead, from, next)
	}
	h.leave(w)
	w.next = max(from, w.start)
	w.pending, w.pendingEvents = nil, 0
	return nil
}

// RequestProgress asks for a progress response (no events, Revision the
// last committed revision) to the given watchers, every watcher if none is
// named. A synced watcher gets it at the next WatchResponses, after its
// events; an unsynced one once it has caught up, so a progress response is
// never ahead of the events. Unknown IDs are ignored.
func (s *Store) RequestProgress(ids ...WatchID) {
	h := s.watch
	if len(ids) == 0 {
		for _, w := range h.all {
			w.progress = true
		}
		return
	}
	for _, id := range ids {
		if w := h.byID[id]; w != nil {
			w.progress = true
		}
	}
}

// Watchers returns how many watchers the Store holds, and how many of them
// are unsynced (behind, catching up from the history).
func (s *Store) Watchers() (total, unsynced int) {
	for _, w := range s.watch.all {
		if !w.synced {
			unsynced++
		}
	}
	return len(s.watch.all), unsynced
}

// WatchResponses drains what is ready, after catching unsynced watchers up
// by one bounded chunk of the history: every watcher's responses in order,
// the watchers in ID order. The caller owns the returned slice. Call it
// as often as the driver can deliver (between a Write and its Committed it
// gives only what was committed before); a watcher behind needs several
// calls to catch up.
func (s *Store) WatchResponses() []WatchResponse {
	h := s.watch
	if len(h.all) == 0 {
		return nil // every Process asks: the common case costs nothing
	}
	s.syncWatchers()
	n := 0
	for _, w := range h.all {
		n += len(w.pending)
		if w.progress {
			n++
		}
	}
	out := make([]WatchResponse, 0, n)
	removed := false
	for _, w := range h.all {
		for _, r := range w.pending {
			s.watchEvents += uint64(len(r.Events))
		}
		out = append(out, w.pending...)
		// The responses are copied out: keep the array for the next ones.
		clear(w.pending)
		w.pending, w.pendingEvents = w.pending[:0], 0
		if w.progress && w.synced && !w.gone {
			out = append(out, WatchResponse{WatchID: w.id, Revision: h.publishedRev})
			w.progress = false
		}
		removed = removed || w.gone
	}
	if removed {
		for _, w := range slices.Clone(h.all) {
			if w.gone {
				h.remove(w)
			}
		}
	}
	return out
}

// Committed publishes the events of the transactions applied since the
// last call to the synced watchers. The node calls it right after the
// batch those Writes went into is committed (backend Commit returned).
// Events of a batch that is rolled back are never published: the node
// discards that Store (see Write) and the watchers move to the reopened one
// with AdoptWatchers, which drops them.
func (s *Store) Committed() {
	h := s.watch
	evs := h.staged
	for i := 0; i < len(evs); {
		rev := evs[i].Kv.ModRevision
		j := i + 1
		for j < len(evs) && evs[j].Kv.ModRevision == rev {
			j++
		}
		s.publish(rev, evs[i:j])
		i = j
	}
	clear(h.staged)
	h.staged = h.staged[:0]
	h.publishedRev = s.rev
}

// AdoptWatchers moves every watcher of old, a Store this one replaces (the
// node reopened the backend after a rollback, or installed a snapshot), to
// s, which must have none, with old's limits: each becomes unsynced at its
// next revision and catches up from s's history (or is canceled if s
// compacted it), keeping its ID and what it had pending. Events old had
// staged and not published are dropped. s takes old's operation counts
// (Ops, PutBytes, WatchEvents, CompactedKeys) too.
func (s *Store) AdoptWatchers(old *Store) {
	s.ops, s.putBytes, s.watchEvents, s.compactedKeys = old.ops, old.putBytes, old.watchEvents, old.compactedKeys
	h, oh := s.watch, old.watch
	if len(h.all) > 0 {
		panic(fmt.Sprintf("mvcc: adopting watchers into a store that has %d", len(h.all)))
	}
	for _, w := range oh.all {
		next := oh.effectiveNext(w)
		w.synced, w.next, w.building = false, next, 0
		h.byID[w.id] = w
		h.all = append(h.all, w)
		if w.next > h.syncFloor() {
			h.join(w)
		}
	}
	h.nextID = max(h.nextID, oh.nextID)
	h.limits = oh.limits
	h.skipAfterCatchUp = oh.skipAfterCatchUp
	*oh = *newWatchHub(old.rev)
}

// stage collects one event of the transaction a Write is applying; kv is
// copied, since the Write's buffers are the caller's.
func (h *watchHub) stage(typ mvccpb.Event_EventType, kv *mvccpb.KeyValue) {
	if len(h.all) == 0 {
		h.unstagedThrough = kv.ModRevision
		return
	}
	c := &mvccpb.KeyValue{CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Lease: kv.Lease}
	buf := make([]byte, len(kv.Key)+len(kv.Value))
	copy(buf, kv.Key)
	copy(buf[len(kv.Key):], kv.Value)
	c.Key = buf[:len(kv.Key):len(kv.Key)]
	if len(kv.Value) > 0 {
		c.Value = buf[len(kv.Key):]
	}
	h.staged = append(h.staged, &mvccpb.Event{Type: typ, Kv: c})
}

// publish hands one revision's events to the synced watchers that match.
func (s *Store) publish(rev int64, evs []*mvccpb.Event) {
	h := s.watch
	touched := h.touched[:0]
	for _, ev := range evs {
		var withPrev *mvccpb.Event // ev with its PrevKv, shared by the watchers that ask
		add := func(w *watcher) {
			if rev < w.next || w.filtered(ev) {
				return
			}
			if w.building != rev {
				w.building = rev
				w.pending = append(w.pending, WatchResponse{WatchID: w.id, Revision: rev, Events: h.eventSlot()})
				touched = append(touched, w)
			}
			out := ev
			if w.prevKV {
				if withPrev == nil {
					withPrev = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: s.prevKV(ev)}
				}
				out = withPrev
			}
			last := &w.pending[len(w.pending)-1]
			last.Events = append(last.Events, out)
			w.pendingEvents++
		}
		for _, w := range h.keyed[string(ev.Kv.Key)] {
			add(w)
		}
		for _, w := range h.ranged {
			if w.matches(ev.Kv.Key) {
				add(w)
			}
		}
	}
	// A watcher this revision takes past its bound is a victim: the
	// revision is taken back and the watcher catches up from it later.
	for _, w := range touched {
		n := len(w.pending[len(w.pending)-1].Events)
		if w.pendingEvents > h.limits.PendingEvents && w.pendingEvents > n {
			w.pending[len(w.pending)-1] = WatchResponse{}
			w.pending = w.pending[:len(w.pending)-1]
			w.pendingEvents -= n
			h.leave(w)
			w.next = rev
		}
	}
	clear(touched)
	h.touched = touched[:0]
}

// prevKV is the event's key as of the revision before the event, as
// etcd's server reads it: nil if it did not exist, if that revision is
// compacted, or if the event creates the key (etcd does not look then).
func (s *Store) prevKV(ev *mvccpb.Event) *mvccpb.KeyValue {
	at := ev.Kv.ModRevision - 1
	if at < 1 || at < s.compactRev || (ev.Type == mvccpb.PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision) {
		return nil
	}
	modified, _, _, ok := s.index.get(ev.Kv.Key, at)
	if !ok {
		return nil
	}
	return s.committed().readKV(modified, false)
}

// syncWatchers catches up to SyncWatchers unsynced watchers, those furthest
// behind first, by one chunk of the history.
func (s *Store) syncWatchers() {
	h := s.watch
	var behind []*watcher
	for _, w := range h.all {
		switch {
		case w.synced || w.gone:
		case w.next < s.compactRev:
			// etcd's rule: a watcher may still start AT the compaction
			// revision, whose changes the compaction keeps.
			w.pending = append(w.pending, WatchResponse{
				WatchID: w.id, Revision: h.publishedRev, CompactRevision: s.compactRev, Canceled: true})
			w.gone = true
		case w.next > h.publishedRev:
			if w.next > h.syncFloor() {
				h.join(w)
			}
		default:
			behind = append(behind, w)
		}
	}
	if len(behind) == 0 {
		return
	}
	slices.SortFunc(behind, func(a, b *watcher) int {
		return cmp.Or(cmp.Compare(a.next, b.next), cmp.Compare(a.id, b.id))
	})
	behind = behind[:min(len(behind), h.limits.SyncWatchers)]
	from := behind[0].next
	to := min(h.publishedRev, from+int64(h.limits.SyncRevisions)-1)
	evs, last := s.history(from, to, h.limits.SyncEvents)
	for _, w := range behind {
		if w.next > last {
			continue
		}
		resp := WatchResponse{WatchID: w.id, Revision: last}
		for _, ev := range evs {
			if ev.Kv.ModRevision < w.next || !w.matches(ev.Kv.Key) || w.filtered(ev) {
				continue
			}
			if w.prevKV {
				ev = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: s.prevKV(ev)}
			}
			resp.Events = append(resp.Events, ev)
		}
		if len(resp.Events) > 0 {
			w.pending = append(w.pending, resp)
			w.pendingEvents += len(resp.Events)
		}
		w.next = last + 1
		if w.next > h.syncFloor() {
			if h.skipAfterCatchUp {
				// The planted bug: the watcher is moved past the revision
				// it caught up to once more, as if next still named it,
				// so the first revision published after it joins is lost.
				w.next++
			}
			h.join(w)
		}
	}
}

// PlantWatchSkipAfterCatchUp plants a bug in the watch hub for the
// simulator's tests of its watch check (the node sets it from its
// Config.Planted; nothing else may): a watcher that catches up from the
// history joins the synced watchers one revision too far on, and loses
// the first revision published after it. AdoptWatchers carries it to the
// Store that replaces this one.
func (s *Store) PlantWatchSkipAfterCatchUp() { s.watch.skipAfterCatchUp = true }

// history reads the events of revisions from..to (all committed) from the
// backend, stopping after the revision at which maxEvents is reached, and
// returns them with the last revision read. A deletion's KeyValue holds the
// key and its revision as mod_revision, as etcd's events do.
func (s *Store) history(from, to int64, maxEvents int) (evs []*mvccpb.Event, last int64) {
	last = from - 1
	for rev := from; rev <= to && len(evs) < maxEvents; rev++ {
		switch {
		case rev <= 1:
			// Revision 1 is the empty store's: no change.
		case rev <= s.compactRev:
			evs = s.compactedRevision(rev, evs)
		default:
			evs = s.revisionEvents(rev, evs)
		}
		last = rev
	}
	return evs, last
}

// revisionEvents appends the changes of one uncompacted revision, probing
// its sub-revisions in order: a revision above the compaction has every
// change it made, numbered from 0 without gaps.
func (s *Store) revisionEvents(rev int64, evs []*mvccpb.Event) []*mvccpb.Event {
	var k [markedRevKeyLen]byte
	for sub := int64(0); ; sub++ {
		r := revision{main: rev, sub: sub}
		typ := mvccpb.PUT
		v, ok := s.be.Get(keyBucket, appendRevKey(k[:0], r, false))
		if !ok {
			typ = mvccpb.DELETE
			v, ok = s.be.Get(keyBucket, appendRevKey(k[:0], r, true))
		}
		if !ok {
			if sub == 0 {
				panic(fmt.Sprintf("mvcc: revision %d (committed, above the compaction at %d) has no change in the backend", rev, s.compactRev))
			}
			return evs
		}
		evs = append(evs, s.event(r, typ, v))
	}
}

// compactedRevision appends what the compaction at rev kept of that
// revision's changes (each key's last change at rev), scanning the backend:
// a compaction may leave gaps in the sub-revisions there.
func (s *Store) compactedRevision(rev int64, evs []*mvccpb.Event) []*mvccpb.Event {
	err := s.be.ForEach(keyBucket, func(k, v []byte) error {
		r, tombstone, err := parseRevKey(k)
		if err != nil {
			return err
		}
		switch {
		case r.main < rev:
			return nil
		case r.main > rev:
			return errStop
		}
		typ := mvccpb.PUT
		if tombstone {
			typ = mvccpb.DELETE
		}
		evs = append(evs, s.event(r, typ, v))
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		panic(fmt.Sprintf("mvcc: read revision %d for watchers: %v", rev, err))
	}
	return evs
}

func (s *Store) event(r revision, typ mvccpb.Event_EventType, v []byte) *mvccpb.Event {
	kv, err := decodeKV(v, false)
	if err != nil {
		panic(fmt.Sprintf("mvcc: revision %v: %v", r, err))
	}
	if typ == mvccpb.DELETE {
		kv.ModRevision = r.main
	}
	return &mvccpb.Event{Type: typ, Kv: kv}
}

// join moves a watcher into the synced set.
func (h *watchHub) join(w *watcher) {
	if w.synced {
		return
	}
	w.synced = true
	if w.end == nil {
		h.keyed[string(w.key)] = append(h.keyed[string(w.key)], w)
	} else {
		h.ranged = append(h.ranged, w)
	}
}

// leave moves a watcher out of the synced set, its next revision made
// explicit.
func (h *watchHub) leave(w *watcher) {
	if !w.synced {
		return
	}
	w.next = h.effectiveNext(w)
	w.synced = false
	if w.end == nil {
		k := string(w.key)
		ws := deleteWatcher(h.keyed[k], w)
		if len(ws) == 0 {
			delete(h.keyed, k)
		} else {
			h.keyed[k] = ws
		}
	} else {
		h.ranged = deleteWatcher(h.ranged, w)
	}
}

func deleteWatcher(ws []*watcher, w *watcher) []*watcher {
	i := slices.Index(ws, w)
	if i < 0 {
		panic(fmt.Sprintf("mvcc: synced watcher %d not in its set", w.id))
	}
	return slices.Delete(ws, i, i+1)
}

func (h *watchHub) remove(w *watcher) {
	h.leave(w)
	delete(h.byID, w.id)
	i, ok := slices.BinarySearchFunc(h.all, w.id, func(x *watcher, id WatchID) int { return cmp.Compare(x.id, id) })
	if !ok {
		panic(fmt.Sprintf("mvcc: watcher %d not in the list", w.id))
	}
	h.all = slices.Delete(h.all, i, i+1)
	w.gone = true
}
