package linearizability

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The watch check. etcd promises a watcher every event of its range (less
// its filters) from its start revision on, in revision order, each revision
// whole in one response, none twice and none from a revision the store
// never reached; a progress notification at revision R promises it has
// been given everything up to R. A watcher that watches again from the
// revision after the last one it saw must therefore, over all its watches,
// see exactly the changes of its range that the store made, once each, in
// order: the changes the revision pass's replay made at each revision
// (revisionLog), which is the store the operations saw. CheckWatches holds
// every watcher to that, rule by rule, each named in the reason it gives:
//
//   - order: events come in revision order, within a response and across
//     responses and watches (an event below a revision the watcher has
//     already observed, or an owed event that arrives only after a later
//     one);
//   - duplicate: no event is delivered twice;
//   - atomic: a revision's events for the watcher come in one response;
//   - gap: every change of a revision in the watcher's range, from its
//     start to the last revision it observed (an event, a response header
//     or a progress notification), is delivered, except those a compaction
//     that canceled the watcher took away;
//   - progress: a progress notification at R comes after every event up
//     to R;
//   - header: a response's header revision is not behind its events, and
//     promises, as the progress notification does, every event up to it;
//   - phantom: no event of a revision the store never created (past the
//     newest revision, when no write of unknown revision is left to have
//     created it), and none for a key its revision did not change;
//   - future: no event arrives before the write that created its revision
//     was called;
//   - event: the event is what the revision did to the key: its type, and
//     for a put the value, create revision and version (so is_create,
//     version 1, is right);
//   - prev_kv: asked for, it is the key as of the revision before (left
//     out only when the key did not exist then, or a compaction asked for
//     by then may have removed that revision); not asked for, never set;
//   - filter: no put reaches a no_put watcher, no delete a no_delete one;
//   - range: no event for a key outside the watched range;
//   - compaction: a watch canceled as compacted names a compaction that
//     was asked for by then, above the revision the watch had reached.
//
// Where the replay does not know a revision's changes (a write whose
// revision is not known created it) nothing is owed there and its events
// are taken as given; the rules of order still hold.

// WatchResult is the outcome of CheckWatches.
type WatchResult struct {
	Verdict Verdict
	// Reason names the watcher, its watch and response, the revision and
	// the rule broken, when the verdict is illegal; or why there was no
	// verdict.
	Reason string
	// What was checked.
	Watchers, Sessions, Responses, Events, Progress, Compacted int
}

// CheckWatches checks the streams of h's watchers against r, the result of
// Check on h's operations: r's revision pass must have replayed them to
// the end (otherwise the verdict is undecided, and it is when r found the
// history illegal). Like Check, it panics if h does not Validate.
func CheckWatches(h History, r Result) WatchResult {
	if err := h.validateWatchers(); err != nil {
		panic(fmt.Sprintf("linearizability: CheckWatches of an invalid history: %v", err))
	}
	res := WatchResult{Watchers: len(h.Watchers)}
	switch {
	case r.Verdict == VerdictIllegal:
		res.Verdict, res.Reason = VerdictUndecided, "not judged: the history's operations are not linearizable"
		return res
	case r.log == nil:
		res.Verdict, res.Reason = VerdictUndecided, "not judged: the revision pass did not replay the history"
		return res
	}
	compactions := slices.Clone(h.Compactions)
	slices.SortStableFunc(compactions, func(a, b Compaction) int { return cmp.Compare(a.Call, b.Call) })
	for i := range h.Watchers {
		c := &streamCheck{w: &h.Watchers[i], log: r.log, compactions: compactions, res: &res,
			delivered: make(map[int64]streamPos), keys: make(map[revisionKey]streamPos)}
		if reason := c.run(); reason != "" {
			res.Verdict, res.Reason = VerdictIllegal, reason
			return res
		}
	}
	res.Verdict = VerdictOK
	return res
}

// streamCheck checks one watcher's stream.
type streamCheck struct {
	w           *Watcher
	log         *revisionLog
	compactions []Compaction // by call time
	res         *WatchResult

	// cursor is the first revision the watcher may still be given: it has
	// been given every event it is owed below it. 0 before its first start
	// is known.
	cursor int64
	// delivered says where each revision's events first came, and keys
	// where each key's event of a revision came.
	delivered map[int64]streamPos
	keys      map[revisionKey]streamPos

	pos streamPos // the response being checked
	// sessionNext is the revision the session being checked has reached:
	// its start, then past what it observed.
	sessionNext int64
}

type streamPos struct{ session, response int }

type revisionKey struct {
	rev int64
	key string
}

func (c *streamCheck) run() string {
	for si := range c.w.Sessions {
		s := &c.w.Sessions[si]
		c.res.Sessions++
		start := s.Start()
		if start == 0 {
			continue // never created: nothing was received (Validate holds it)
		}
		c.pos = streamPos{session: si, response: -1}
		if c.cursor == 0 {
			c.cursor = start
		}
		if start > c.cursor {
			// Asking from past what it had is a claim to have it all.
			if m, ch := c.firstOwed(c.cursor, start); ch != nil {
				return c.where() + fmt.Sprintf("gap: the watch asked from revision %d, but revision %d's %s had not been delivered",
					start, m, describeChange(ch))
			}
			c.cursor = start
		}
		c.sessionNext = start
		for ri := range s.Responses {
			c.pos.response = ri
			r := &s.Responses[ri]
			c.res.Responses++
			c.res.Events += len(r.Events)
			if reason := c.response(r); reason != "" {
				return c.where() + reason
			}
		}
	}
	return ""
}

// where names the watcher, watch and response being checked.
func (c *streamCheck) where() string {
	w := c.w
	opts := []string{"key " + describeKey(w.Key)}
	switch w.End {
	case "":
	case EndAll:
		opts[0] = "range " + describeKey(w.Key) + ".."
	default:
		opts[0] = "range " + describeKey(w.Key) + ".." + describeKey(w.End)
	}
	for _, o := range []struct {
		on   bool
		name string
	}{{w.PrevKV, "prev_kv"}, {w.NoPut, "no_put"}, {w.NoDelete, "no_delete"}} {
		if o.on {
			opts = append(opts, o.name)
		}
	}
	s := &w.Sessions[c.pos.session]
	at := fmt.Sprintf("watcher w%d (%s), watch %d on %s", w.ID, strings.Join(opts, ", "), c.pos.session+1, s.Member)
	if c.pos.response >= 0 {
		r := &s.Responses[c.pos.response]
		at += fmt.Sprintf(", response %d received at %s", c.pos.response+1, formatTime(r.At))
	}
	return at + ": "
}

// formatTime renders a time in nanoseconds (from the start of the
// recording) as a duration.
func formatTime(ns int64) string {
	return time.Duration(ns).String()
}

// response checks one response and moves the cursor past what it shows.
func (c *streamCheck) response(r *WatchResponse) string {
	switch {
	case r.Canceled && r.CompactRevision != 0:
		return c.compacted(r)
	case r.Canceled:
		return ""
	case r.IsProgress():
		c.res.Progress++
		if m, ch := c.firstOwed(c.cursor, r.Revision+1); ch != nil {
			return c.missing("progress", m, ch, fmt.Sprintf("a progress notification at revision %d came", r.Revision))
		}
		c.observe(r.Revision)
		return ""
	}
	for i := 1; i < len(r.Events); i++ {
		if prev, ev := &r.Events[i-1], &r.Events[i]; ev.ModRevision < prev.ModRevision {
			return fmt.Sprintf("order: event %d (%s) comes after event %d (%s) in one response", i+1, ev, i, prev)
		}
	}
	for i := 0; i < len(r.Events); {
		rev := r.Events[i].ModRevision
		j := i + 1
		for j < len(r.Events) && r.Events[j].ModRevision == rev {
			j++
		}
		if reason := c.revision(rev, r.Events[i:j], r.At); reason != "" {
			return reason
		}
		i = j
	}
	last := r.Events[len(r.Events)-1].ModRevision
	if r.Revision < last {
		return fmt.Sprintf("header: the response's header revision %d is behind its event of revision %d", r.Revision, last)
	}
	if m, ch := c.firstOwed(c.cursor, r.Revision+1); ch != nil {
		return c.missing("header", m, ch, fmt.Sprintf("a response with header revision %d came", r.Revision))
	}
	c.observe(r.Revision)
	return ""
}

// observe moves the cursor past rev, which the watcher has been told it
// has everything up to.
func (c *streamCheck) observe(rev int64) {
	c.cursor = max(c.cursor, rev+1)
	c.sessionNext = max(c.sessionNext, rev+1)
}

// revision checks the events of one revision in one response.
func (c *streamCheck) revision(rev int64, evs []WatchEvent, at int64) string {
	if rev < c.cursor {
		if first, ok := c.delivered[rev]; ok {
			for i := range evs {
				if p, ok := c.keys[revisionKey{rev, evs[i].Key}]; ok {
					return fmt.Sprintf("duplicate: %s was delivered before, in %s", &evs[i], c.describePos(p))
				}
			}
			return fmt.Sprintf("atomic: revision %d's events are split: %s came here, the others in %s", rev, &evs[0], c.describePos(first))
		}
		return fmt.Sprintf("order: %s comes after the watcher had observed revision %d", &evs[0], c.cursor-1)
	}
	if m, ch := c.firstOwed(c.cursor, rev); ch != nil {
		return c.missing("gap", m, ch, fmt.Sprintf("%s came", &evs[0]))
	}
	for i := range evs {
		for j := range i {
			if evs[j].Key == evs[i].Key {
				return fmt.Sprintf("duplicate: %s and %s in one response: a revision changes a key once", &evs[j], &evs[i])
			}
		}
		if reason := c.event(&evs[i], at); reason != "" {
			return reason
		}
	}
	if rc, known := c.log.at(rev); known {
		for i := range rc.changes {
			ch := &rc.changes[i]
			if !c.owed(ch) || slices.ContainsFunc(evs, func(e WatchEvent) bool { return e.Key == ch.key }) {
				continue
			}
			if p, ok := c.later(rev, ch.key); ok {
				return fmt.Sprintf("atomic: revision %d's events are split: its %s came later, in %s", rev, describeChange(ch), c.describePos(p))
			}
			return fmt.Sprintf("gap: revision %d's %s, in its range, was never delivered; its other events were", rev, describeChange(ch))
		}
	}
	c.delivered[rev] = c.pos
	for i := range evs {
		c.keys[revisionKey{rev, evs[i].Key}] = c.pos
	}
	c.observe(rev)
	return ""
}

// missing reports an owed change at revision m that had not come when
// what happened (a later event, a progress notification, a header).
func (c *streamCheck) missing(rule string, m int64, ch *keyChange, what string) string {
	if p, ok := c.later(m, ch.key); ok {
		return fmt.Sprintf("order: %s before revision %d's %s, which came only later, in %s", what, m, describeChange(ch), c.describePos(p))
	}
	return fmt.Sprintf("%s: %s, but revision %d's %s, in its range, had not been delivered, and never was", rule, what, m, describeChange(ch))
}

// event checks one event against what its revision did to its key.
func (c *streamCheck) event(ev *WatchEvent, at int64) string {
	w, rev := c.w, ev.ModRevision
	switch {
	case !InRange(ev.Key, w.Key, w.End):
		return fmt.Sprintf("range: %s is for a key outside the range watched", ev)
	case ev.Type == KindPut && w.NoPut, ev.Type == KindDelete && w.NoDelete:
		return fmt.Sprintf("filter: %s reached a watcher that filters out %ss", ev, ev.Type)
	case ev.PrevKV != nil && !w.PrevKV:
		return fmt.Sprintf("prev_kv: %s carries a prev_kv the watcher did not ask for", ev)
	case ev.Type == KindDelete && (ev.Value != "" || ev.CreateRevision != 0 || ev.Version != 0):
		return fmt.Sprintf("event: %s carries a value, create revision or version (%q, %d, %d): a delete's holds only the key",
			ev, ev.Value, ev.CreateRevision, ev.Version)
	case rev < 2:
		return fmt.Sprintf("phantom: %s: revision %d is the empty store's and changes nothing", ev, rev)
	case rev > c.log.last && c.log.unplaced == 0:
		return fmt.Sprintf("phantom: %s: the store never reached revision %d (the history's newest is %d, and no write of unknown revision is left to have created another)",
			ev, rev, c.log.last)
	}
	rc, known := c.log.at(rev)
	if !known {
		return "" // a write of unknown revision made it: nothing to compare
	}
	if at < rc.call {
		return fmt.Sprintf("future: %s was received at %s, before the write that created revision %d was called, at %s",
			ev, formatTime(at), rev, formatTime(rc.call))
	}
	var ch *keyChange
	if i := slices.IndexFunc(rc.changes, func(c keyChange) bool { return c.key == ev.Key }); i >= 0 {
		ch = &rc.changes[i] // a revision changes a key at most once
	}
	if ch == nil {
		return fmt.Sprintf("phantom: %s, but revision %d did not change the key (it changed %s)", ev, rev, describeChanges(rc.changes))
	}
	if reason := checkEventKV(ev, ch); reason != "" {
		return reason
	}
	if w.PrevKV {
		return c.prevKV(ev, ch, at)
	}
	return ""
}

// checkEventKV compares an event with the change the replay made.
func checkEventKV(ev *WatchEvent, ch *keyChange) string {
	rev := ev.ModRevision
	if ch.delete != (ev.Type == KindDelete) {
		return fmt.Sprintf("event: %s, but revision %d's change to the key was a %s", ev, rev, describeChange(ch))
	}
	a := &ch.after
	switch {
	case ch.delete:
		return ""
	case ev.Value != a.value:
		return fmt.Sprintf("event: %s, but revision %d wrote %q", ev, rev, a.value)
	case !a.metaUncertain && (ev.CreateRevision != a.create || ev.Version != a.version):
		return fmt.Sprintf("event: %s, but after revision %d the key had create revision %d and version %d",
			ev, rev, a.create, a.version)
	}
	return ""
}

// prevKV checks an event's prev_kv against the key before the revision.
func (c *streamCheck) prevKV(ev *WatchEvent, ch *keyChange, at int64) string {
	b, p, rev := &ch.before, ev.PrevKV, ev.ModRevision
	switch {
	case b.uncertain:
		return ""
	case p == nil && b.exists && !c.compactedBy(rev, at):
		return fmt.Sprintf("prev_kv: %s has none, but at revision %d the key was %s (and no compaction asked for by then removed that revision)",
			ev, rev-1, b.describe())
	case p != nil && !b.exists:
		return fmt.Sprintf("prev_kv: %s carries %s, but at revision %d the key was absent", ev, describeKV(p), rev-1)
	case p != nil && (p.Value != b.value || p.ModRevision != b.mod ||
		!b.metaUncertain && (p.CreateRevision != b.create || p.Version != b.version)):
		return fmt.Sprintf("prev_kv: %s carries %s, but at revision %d the key was %s", ev, describeKV(p), rev-1, b.describe())
	}
	return ""
}

// compactedBy reports whether a compaction asked for by time at may have
// removed revision rev-1 (etcd omits prev_kv then).
func (c *streamCheck) compactedBy(rev, at int64) bool {
	for _, cp := range c.compactions {
		if cp.Call > at {
			break
		}
		if cp.Revision >= rev {
			return true
		}
	}
	return false
}

// compacted checks a cancellation for compaction and excuses what the
// compaction took from the watcher.
func (c *streamCheck) compacted(r *WatchResponse) string {
	cr := r.CompactRevision
	asked := slices.ContainsFunc(c.compactions, func(cp Compaction) bool { return cp.Revision == cr && cp.Call <= r.At })
	switch {
	case !asked:
		return fmt.Sprintf("compaction: the watch was canceled as compacted at revision %d, but no compaction at %d had been asked for by then", cr, cr)
	case cr <= c.sessionNext:
		return fmt.Sprintf("compaction: the watch was canceled as compacted at revision %d, but it had reached revision %d, which that compaction keeps",
			cr, c.sessionNext)
	}
	c.res.Compacted++
	c.cursor = max(c.cursor, cr)
	return ""
}

// owed reports whether the watcher must be given an event for ch: in its
// range, not filtered out, and certain (a delete of a key that may not
// have existed may have made no event).
func (c *streamCheck) owed(ch *keyChange) bool {
	w := c.w
	switch {
	case !InRange(ch.key, w.Key, w.End), ch.delete && w.NoDelete, !ch.delete && w.NoPut:
		return false
	case ch.delete:
		return ch.before.exists && !ch.before.uncertain
	}
	return true
}

// firstOwed returns the first change owed to the watcher at revisions
// from..to-1, if any.
func (c *streamCheck) firstOwed(from, to int64) (int64, *keyChange) {
	for rev := max(from, 2); rev < to && rev <= c.log.last; rev++ {
		rc, known := c.log.at(rev)
		if !known {
			continue
		}
		for i := range rc.changes {
			if c.owed(&rc.changes[i]) {
				return rev, &rc.changes[i]
			}
		}
	}
	return 0, nil
}

// later finds an event of revision rev for key after the response being
// checked.
func (c *streamCheck) later(rev int64, key string) (streamPos, bool) {
	for si := c.pos.session; si < len(c.w.Sessions); si++ {
		rs := c.w.Sessions[si].Responses
		ri := 0
		if si == c.pos.session {
			ri = c.pos.response + 1
		}
		for ; ri < len(rs); ri++ {
			for _, ev := range rs[ri].Events {
				if ev.ModRevision == rev && ev.Key == key {
					return streamPos{session: si, response: ri}, true
				}
			}
		}
	}
	return streamPos{}, false
}

func (c *streamCheck) describePos(p streamPos) string {
	s := &c.w.Sessions[p.session]
	return fmt.Sprintf("watch %d on %s, response %d received at %s", p.session+1, s.Member, p.response+1, formatTime(s.Responses[p.response].At))
}

// describeChange names a change the replay made to one key.
func describeChange(ch *keyChange) string {
	if ch.delete {
		return "delete of " + describeKey(ch.key)
	}
	return fmt.Sprintf("put %s=%s", describeKey(ch.key), ch.after.value)
}

func describeChanges(chs []keyChange) string {
	parts := make([]string, len(chs))
	for i := range chs {
		parts[i] = describeChange(&chs[i])
	}
	return strings.Join(parts, ", ")
}

func describeKV(kv *KV) string {
	return (&kvState{exists: true, value: kv.Value, mod: kv.ModRevision, create: kv.CreateRevision, version: kv.Version}).describe()
}
