package linearizability

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The revision pass. What porcupine cannot see key by key, revisions show
// across keys: etcd gives every change of the store one revision, so the
// writes of a history, ordered by revision, are the store's one sequential
// history, and every read names the point of it that it saw. The pass
// checks, in this order:
//
//   - unique: two operations never created the same revision;
//   - future: a serializable read never saw a revision created by a write
//     called after it returned (nor one after such a revision);
//   - real time: an operation that starts after another returned is served
//     at a revision no older than the one the other saw (and a write
//     creates a newer one); a serializable read, which may be stale, is
//     held to it only as the one that returned first;
//   - replay: applying the writes in revision order to a plain map, every
//     read returns exactly the state at its header revision (values, mod
//     and create revisions, versions), every delete deleted exactly the keys
//     that existed, every cas's compare held or failed as it said, and
//     every revision up to the newest seen was created by some write.
//
// Operations whose revisions were not recorded (0) are skipped. Unknown
// writes the check could not resolve, and ok writes whose revision was not
// recorded, leave holes in the sequence of revisions: each hole needs one of
// them of its own, called before an operation showed that the hole's
// revision existed, and the keys they might have touched are uncertain
// from the first hole on, until a known write settles them.

// checkRevisions runs the pass and returns the first violation ("" if none)
// and how many operations had revisions to check.
func (p *prepared) checkRevisions() (reason string, checked int) {
	for i := range p.ops {
		if p.ops[i].rev != 0 {
			checked++
		}
	}
	writers, reason := p.uniqueRevisions()
	if reason != "" {
		return reason, checked
	}
	if reason = p.checkFuture(writers); reason != "" {
		return reason, checked
	}
	if reason = p.realTime(); reason != "" {
		return reason, checked
	}
	return p.replay(writers), checked
}

// uniqueRevisions maps each created revision to the operation that created
// it, and reports two that claim one.
func (p *prepared) uniqueRevisions() (map[int64]*checked, string) {
	writers := make(map[int64]*checked)
	for i := range p.ops {
		c := &p.ops[i]
		if c.rev == 0 || !c.creates() {
			continue
		}
		if prev, ok := writers[c.rev]; ok {
			return nil, fmt.Sprintf("revision %d was created twice: by %s and by %s", c.rev, p.describe(prev), p.describe(c))
		}
		writers[c.rev] = c
	}
	return writers, ""
}

// realTime checks that revisions follow real time: when a returned before b
// was called, the store b saw (before its own write, if it wrote) is at
// least at the revision a saw (after its write). A serializable read may
// be stale, so it is not held to it as b; but what it saw was committed
// before it returned, so it binds every operation called later as a. Writes
// resolved after the fact take part as b only (their return is derived
// from the reads that saw them).
func (p *prepared) realTime() string {
	var returned, called []*checked
	for i := range p.ops {
		c := &p.ops[i]
		if c.rev == 0 || c.unknown {
			continue
		}
		if !c.op.Serializable {
			called = append(called, c)
		}
		if !c.resolved {
			returned = append(returned, c)
		}
	}
	sort.SliceStable(returned, func(i, j int) bool { return returned[i].ret < returned[j].ret })
	sort.SliceStable(called, func(i, j int) bool { return called[i].op.Call < called[j].op.Call })
	var newest *checked // the returned operation that saw the newest revision so far
	var newestRev int64
	r := 0
	for _, b := range called {
		for r < len(returned) && returned[r].ret < b.op.Call {
			if _, after := returned[r].span(); newest == nil || after > newestRev {
				newest, newestRev = returned[r], after
			}
			r++
		}
		if before, _ := b.span(); newest != nil && before < newestRev {
			return fmt.Sprintf("revisions went back in real time: %s returned at %d having seen revision %d, then %s, called at %d, saw revision %d",
				p.describe(newest), newest.ret, newestRev, p.describe(b), b.op.Call, before)
		}
	}
	return ""
}

// kvState is one key in the replay.
type kvState struct {
	exists               bool
	value                string
	mod, create, version int64
	// uncertain: an unresolved unknown write may have changed the key; its
	// value and revisions are not checked until a known write settles it.
	uncertain bool
	// metaUncertain: the value is known (a known put) but not whether the
	// key existed before it, so its create revision and version are not.
	metaUncertain bool
}

// replay applies the writes in revision order and checks every read, and
// every write that changed nothing, at its revision.
func (p *prepared) replay(writers map[int64]*checked) string {
	var reads []*checked // served at a revision without creating one
	maxRev := int64(1)
	for i := range p.ops {
		c := &p.ops[i]
		if c.rev == 0 || c.unknown {
			continue
		}
		maxRev = max(maxRev, c.rev)
		if !c.creates() {
			reads = append(reads, c)
		}
	}
	sort.SliceStable(reads, func(i, j int) bool { return reads[i].rev < reads[j].rev })
	uncertainKeys, unplacedCalls := p.unplaced()
	p.log = &revisionLog{unplaced: len(unplacedCalls)}
	gaps := 0
	state := make(map[string]*kvState)
	at := func(k string) *kvState {
		s := state[k]
		if s == nil {
			s = &kvState{}
			state[k] = s
		}
		return s
	}
	next := 0
	// Revision 1 is the empty store's; the first write creates 2.
	for rev := int64(1); rev <= maxRev; rev++ {
		if rev > 1 {
			w, ok := writers[rev]
			switch {
			case ok:
				p.log.revs = append(p.log.revs, revisionChanges{call: w.op.Call})
				if reason := p.applyWrite(w, at); reason != "" {
					return reason
				}
			default:
				p.log.revs = append(p.log.revs, revisionChanges{unknown: true})
				gaps++
				if reason := p.explainGap(rev, gaps, unplacedCalls); reason != "" {
					return reason
				}
				for _, k := range uncertainKeys {
					*at(k) = kvState{uncertain: true}
				}
			}
		}
		for ; next < len(reads) && reads[next].rev == rev; next++ {
			if reason := p.checkRead(reads[next], at); reason != "" {
				return reason
			}
		}
	}
	p.log.last = maxRev
	p.end = &endState{rev: maxRev, keys: state, universe: p.universe}
	for i := range p.ops {
		if c := &p.ops[i]; !c.unknown && !c.resolved {
			p.end.lastReturn = max(p.end.lastReturn, c.ret)
		}
	}
	return ""
}

// endState is the replayed store after the last revision of a history, kept
// so that reads made after the history ended can be checked against it
// without checking the history again (CheckAfter).
type endState struct {
	rev        int64 // the last revision
	keys       map[string]*kvState
	universe   []string
	lastReturn int64 // the latest return of an operation that returned
}

// revisionLog is what the replay did at each revision, kept for the watch
// check (CheckWatches): the keys each revision changed, with their state
// before and after. It is the revision pass's own replay, recorded, so
// that the watchers are judged against exactly the store the operations
// were.
type revisionLog struct {
	// last is the last revision the replay reached, the newest any
	// operation showed.
	last int64
	// revs[i] is revision i+2: revision 1 is the empty store's.
	revs []revisionChanges
	// unplaced counts the writes whose revision is not known: each may
	// have created one revision after last, which no operation showed.
	unplaced int
}

// revisionChanges is one revision's changes, in the order its write made
// them.
type revisionChanges struct {
	// unknown: no known write created it (a write whose revision is not
	// known did), so what it changed is not known.
	unknown bool
	call    int64 // when the write that created it was called
	changes []keyChange
}

// keyChange is one key's change at a revision: a put, or a delete of a
// key that existed (or might have, when before is uncertain).
type keyChange struct {
	key           string
	delete        bool
	before, after kvState
}

// at returns revision rev's changes, and whether the log knows them: false
// for revision 1 and below, a revision past last, or one a write of
// unknown revision created.
func (l *revisionLog) at(rev int64) (*revisionChanges, bool) {
	if rev < 2 || rev > l.last {
		return nil, false
	}
	rc := &l.revs[rev-2]
	return rc, !rc.unknown
}

// note records a change of the revision being replayed.
func (l *revisionLog) note(key string, del bool, before, after kvState) {
	if l == nil {
		return
	}
	rc := &l.revs[len(l.revs)-1]
	rc.changes = append(rc.changes, keyChange{key: key, delete: del, before: before, after: after})
}

// unplaced returns what the writes whose revision is not known (unresolved
// unknown ones, and ok ones that changed something but whose revision was
// not recorded) might have done: every key they might have changed, and
// their call times, sorted.
func (p *prepared) unplaced() (keys []string, calls []int64) {
	set := make(map[string]bool)
	for i := range p.ops {
		c := &p.ops[i]
		if !c.unknown && (c.rev != 0 || !c.creates()) {
			continue
		}
		calls = append(calls, c.op.Call)
		for _, s := range p.steps(c) {
			set[s.in.key] = true
		}
	}
	keys = make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	slices.Sort(calls)
	return keys, calls
}

// explainGap checks that a revision no known write created, the gaps-th
// such, can have been created by a write whose revision is not known. Each
// of those creates at most one revision, after its call, and the revision
// existed by the time an operation returned having seen it. The gaps come
// in revision order, so that this time never decreases, and it is enough
// that the gaps so far have as many such writes called in time.
func (p *prepared) explainGap(rev int64, gaps int, calls []int64) string {
	if len(calls) == 0 {
		return fmt.Sprintf("revision %d was created by no operation in the history, and none of unknown outcome is left to explain it", rev)
	}
	n, by := len(calls), p.existedBy(rev)
	if by != nil {
		n = sort.Search(len(calls), func(i int) bool { return calls[i] > by.ret })
	}
	switch {
	case n >= gaps:
		return ""
	case by == nil:
		// Only resolved writes were served at rev or later.
		return fmt.Sprintf("revision %d was created by no operation in the history, and the %d writes whose revision is unknown are used by the revisions before it",
			rev, len(calls))
	}
	return fmt.Sprintf("revision %d was created by no operation in the history, and no write whose revision is unknown is left to explain it: %s returned at %d having seen it, when %d such writes had been called, and it is the %s revision created by none",
		rev, p.describe(by), by.ret, n, ordinal(gaps))
}

// ordinal renders 1 as "1st", 2 as "2nd", and so on.
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}

// applyWrite applies a write that created a revision, checking what it
// reported against the state before it.
func (p *prepared) applyWrite(c *checked, at func(string) *kvState) string {
	op, rev := c.op, c.rev
	put := func(k, v string) {
		s := at(k)
		before := *s
		switch {
		case s.uncertain:
			*s = kvState{exists: true, value: v, mod: rev, metaUncertain: true}
		case s.exists:
			s.value, s.mod = v, rev
			s.version++
		default:
			*s = kvState{exists: true, value: v, mod: rev, create: rev, version: 1}
		}
		p.log.note(k, false, before, *s)
	}
	switch op.Kind {
	case KindPut:
		put(op.Key, op.Value)
	case KindCAS:
		if reason := p.compare(c, at(op.Key), true); reason != "" {
			return reason
		}
		put(op.Key, op.Value)
	case KindDelete:
		return p.deleteRange(c, op.Key, op.End, op.Deleted, at, p.log)
	case KindTxn:
		for _, t := range op.Ops {
			if t.Kind == KindPut {
				put(t.Key, t.Value)
				continue
			}
			if reason := p.deleteRange(c, t.Key, t.End, t.Deleted, at, p.log); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// deleteRange deletes the keys in [key, end) and checks the count the
// client saw (not known for a resolved write). It notes each key deleted
// (or perhaps deleted) in log, if any.
func (p *prepared) deleteRange(c *checked, key, end string, count int64, at func(string) *kvState, log *revisionLog) string {
	existed, certain := int64(0), true
	for _, k := range p.keysIn(key, end) {
		s := at(k)
		if s.uncertain {
			certain = false
		} else if s.exists {
			existed++
		}
		if s.exists || s.uncertain {
			log.note(k, true, *s, kvState{})
		}
		*s = kvState{}
	}
	if c.resolved || !certain || existed == count {
		return ""
	}
	before, _ := c.span() // the revision it was served at, if it changed nothing
	return fmt.Sprintf("%s deleted %d keys, but %d existed at revision %d", p.describe(c), count, existed, before)
}

// compare checks a cas's compare against the key's state: it must hold if
// the cas succeeded, and fail if not.
func (p *prepared) compare(c *checked, s *kvState, succeeded bool) string {
	if s.uncertain {
		return ""
	}
	op := c.op
	holds := s.exists && s.value == op.Expect
	if op.ExpectAbsent {
		holds = !s.exists
	}
	if holds == succeeded {
		return ""
	}
	before, _ := c.span()
	return fmt.Sprintf("%s reported succeeded=%v, but at revision %d the key was %s", p.describe(c), succeeded, before, s.describe())
}

// checkRead checks an operation that created no revision against the state
// at its revision.
func (p *prepared) checkRead(c *checked, at func(string) *kvState) string {
	op := c.op
	// A write that changed nothing deletes nothing: check its counts on
	// copies, leaving the state as it is.
	peek := func(k string) *kvState { s := *at(k); return &s }
	switch op.Kind {
	case KindGet:
		kv := KV{Key: op.Key, Value: op.Result, ModRevision: op.ModRevision, CreateRevision: op.CreateRevision, Version: op.Version}
		return p.checkKey(c, op.Key, at(op.Key), op.Found, kv)
	case KindRange:
		var reason string
		p.eachKeyRead(op, func(k string, found bool, kv KV) bool {
			reason = p.checkKey(c, k, at(k), found, kv)
			return reason == ""
		})
		return reason
	case KindCAS:
		return p.compare(c, at(op.Key), false)
	case KindDelete:
		return p.deleteRange(c, op.Key, op.End, 0, peek, nil)
	case KindTxn:
		for _, t := range op.Ops {
			if reason := p.deleteRange(c, t.Key, t.End, 0, peek, nil); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// checkKey compares what a read returned for one key with the replayed
// state. key names the key read: kv is empty when it was not found.
func (p *prepared) checkKey(c *checked, key string, s *kvState, found bool, kv KV) string {
	if s.uncertain {
		return ""
	}
	want := s.describe()
	got := "absent"
	if found {
		got = (&kvState{exists: true, value: kv.Value, mod: kv.ModRevision, create: kv.CreateRevision, version: kv.Version}).describe()
	}
	bad := found != s.exists
	if found && s.exists {
		bad = kv.Value != s.value ||
			kv.ModRevision != 0 && kv.ModRevision != s.mod ||
			!s.metaUncertain && (kv.CreateRevision != 0 && kv.CreateRevision != s.create || kv.Version != 0 && kv.Version != s.version)
	}
	if !bad {
		return ""
	}
	return fmt.Sprintf("%s read key %s as %s, but at revision %d it was %s", p.describe(c), describeKey(key), got, c.rev, want)
}

// checkFuture checks that no serializable read saw a revision created by a
// write that was called only after the read returned: neither the one it
// was served at nor any before it, which the state it read includes.
func (p *prepared) checkFuture(writers map[int64]*checked) string {
	revs := make([]int64, 0, len(writers))
	for rev := range writers {
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	// latest[i] is the writer called last among revs[:i+1].
	latest := make([]*checked, len(revs))
	for i, rev := range revs {
		latest[i] = writers[rev]
		if i > 0 && latest[i-1].op.Call > latest[i].op.Call {
			latest[i] = latest[i-1]
		}
	}
	for i := range p.ops {
		c := &p.ops[i]
		if !c.op.Serializable || c.rev == 0 {
			continue
		}
		j, _ := slices.BinarySearch(revs, c.rev+1)
		if j == 0 {
			continue
		}
		if w := latest[j-1]; w.op.Call > c.ret {
			if w.rev == c.rev {
				return fmt.Sprintf("%s, which returned at %d, saw revision %d, created by %s called later, at %d",
					p.describe(c), c.ret, c.rev, p.describe(w), w.op.Call)
			}
			return fmt.Sprintf("%s, which returned at %d, saw revision %d, so revision %d before it, created by %s called later, at %d",
				p.describe(c), c.ret, c.rev, w.rev, p.describe(w), w.op.Call)
		}
	}
	return ""
}

func (s *kvState) describe() string {
	if !s.exists {
		return "absent"
	}
	return fmt.Sprintf("%q mod %d create %d version %d", s.value, s.mod, s.create, s.version)
}

// describe names an operation in a reason: its index and what it did.
func (p *prepared) describe(c *checked) string {
	if c.index < 0 {
		return "a read after the history (" + Describe(c.op) + ")" // CheckAfter's
	}
	return "history[" + strconv.Itoa(c.index) + "] (" + Describe(c.op) + ")"
}

// Describe renders an operation on one line, as in `put key-003=c1-4: ok
// @57` or `txn [put a=x, delete b..c]: unknown`.
func Describe(op *Operation) string {
	var b strings.Builder
	if op.Serializable {
		b.WriteString("serializable ")
	}
	b.WriteString(string(op.Kind))
	b.WriteByte(' ')
	switch op.Kind {
	case KindTxn:
		parts := make([]string, len(op.Ops))
		for i, t := range op.Ops {
			parts[i] = describeWrite(t.Kind, t.Key, t.End, t.Value)
		}
		b.WriteString("[" + strings.Join(parts, ", ") + "]")
	case KindCAS:
		expect := op.Expect
		if op.ExpectAbsent {
			expect = "absent"
		}
		b.WriteString(describeKey(op.Key) + " " + expect + "->" + op.Value)
	default:
		b.WriteString(strings.TrimPrefix(describeWrite(op.Kind, op.Key, op.End, op.Value), string(op.Kind)+" "))
	}
	if op.Outcome == "" {
		return b.String()
	}
	b.WriteString(": " + string(op.Outcome))
	if op.Outcome != OutcomeOK {
		if op.Error != "" {
			b.WriteString(" (" + op.Error + ")")
		}
		return b.String()
	}
	switch op.Kind {
	case KindGet:
		if op.Found {
			b.WriteString(" " + op.Result)
			if op.ModRevision != 0 {
				fmt.Fprintf(&b, " mod %d create %d version %d", op.ModRevision, op.CreateRevision, op.Version)
			}
		} else {
			b.WriteString(" (none)")
		}
	case KindRange:
		fmt.Fprintf(&b, " %d keys", len(op.KVs))
	case KindDelete:
		fmt.Fprintf(&b, " %d", op.Deleted)
	case KindCAS:
		fmt.Fprintf(&b, " %v", op.Succeeded)
	}
	if op.Revision != 0 {
		fmt.Fprintf(&b, " @%d", op.Revision)
	}
	return b.String()
}

func describeWrite(kind Kind, key, end, value string) string {
	s := string(kind) + " " + describeKey(key)
	switch {
	case end == EndAll:
		s += ".."
	case end != "":
		s += ".." + describeKey(end)
	}
	if kind == KindPut {
		s += "=" + value
	}
	return s
}
