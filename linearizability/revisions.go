package linearizability

import (
	"fmt"
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
//   - real time: an operation that starts after another returned is served
//     at a revision no older than the one the other saw (and a write
//     creates a newer one);
//   - replay: applying the writes in revision order to a plain map, every
//     read returns exactly the state at its header revision (values, mod
//     and create revisions, versions), every delete deleted exactly the keys
//     that existed, every cas's compare held or failed as it said, and a
//     serializable read never saw a revision created after it returned.
//
// Operations whose revisions were not recorded (0) are skipped. Unknown
// writes the check could not resolve leave holes in the sequence of
// revisions: the keys they might have touched are uncertain from the first
// hole on, until a known write settles them.

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
// least at the revision a saw (after its write). Serializable reads may be
// stale and are not held to it; writes resolved after the fact take part
// as b only (their return is derived from the reads that saw them).
func (p *prepared) realTime() string {
	var returned, called []*checked
	for i := range p.ops {
		c := &p.ops[i]
		if c.rev == 0 || c.unknown || c.op.Serializable {
			continue
		}
		called = append(called, c)
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
	uncertainKeys := p.unknownKeys()
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
				if reason := p.applyWrite(w, at); reason != "" {
					return reason
				}
			case uncertainKeys == nil:
				return fmt.Sprintf("revision %d was created by no operation in the history, and none of unknown outcome is left to explain it", rev)
			default:
				for _, k := range uncertainKeys {
					*at(k) = kvState{uncertain: true}
				}
			}
		}
		for ; next < len(reads) && reads[next].rev == rev; next++ {
			if reason := p.checkRead(reads[next], at, writers); reason != "" {
				return reason
			}
		}
	}
	return p.checkFuture(writers)
}

// unknownKeys returns every key an unresolved unknown write might have
// changed, or nil if there is none.
func (p *prepared) unknownKeys() []string {
	set := make(map[string]bool)
	hasUnknown := false
	for i := range p.ops {
		c := &p.ops[i]
		if !c.unknown {
			continue
		}
		hasUnknown = true
		for _, s := range p.steps(c) {
			set[s.in.key] = true
		}
	}
	if !hasUnknown {
		return nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// applyWrite applies a write that created a revision, checking what it
// reported against the state before it.
func (p *prepared) applyWrite(c *checked, at func(string) *kvState) string {
	op, rev := c.op, c.rev
	put := func(k, v string) {
		s := at(k)
		switch {
		case s.uncertain:
			*s = kvState{exists: true, value: v, mod: rev, metaUncertain: true}
		case s.exists:
			s.value, s.mod = v, rev
			s.version++
		default:
			*s = kvState{exists: true, value: v, mod: rev, create: rev, version: 1, metaUncertain: s.metaUncertain}
		}
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
		return p.deleteRange(c, op.Key, op.End, op.Deleted, at)
	case KindTxn:
		for _, t := range op.Ops {
			if t.Kind == KindPut {
				put(t.Key, t.Value)
				continue
			}
			if reason := p.deleteRange(c, t.Key, t.End, t.Deleted, at); reason != "" {
				return reason
			}
		}
	}
	return ""
}

// deleteRange deletes the keys in [key, end) and checks the count the
// client saw (not known for a resolved write).
func (p *prepared) deleteRange(c *checked, key, end string, count int64, at func(string) *kvState) string {
	existed, certain := int64(0), true
	for _, k := range p.keysIn(key, end) {
		s := at(k)
		if s.uncertain {
			certain = false
		} else if s.exists {
			existed++
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
func (p *prepared) checkRead(c *checked, at func(string) *kvState, writers map[int64]*checked) string {
	op := c.op
	switch op.Kind {
	case KindGet:
		kv := KV{Key: op.Key, Value: op.Result, ModRevision: op.ModRevision, CreateRevision: op.CreateRevision, Version: op.Version}
		return p.checkKey(c, op.Key, at(op.Key), op.Found, kv)
	case KindRange:
		kvs := op.KVs
		for _, k := range p.keysIn(op.Key, op.End) {
			for len(kvs) > 0 && kvs[0].Key < k {
				kvs = kvs[1:]
			}
			found := len(kvs) > 0 && kvs[0].Key == k
			var kv KV
			if found {
				kv = kvs[0]
			}
			if reason := p.checkKey(c, k, at(k), found, kv); reason != "" {
				return reason
			}
		}
	case KindCAS:
		return p.compare(c, at(op.Key), false)
	case KindDelete:
		return p.deleteRange(c, op.Key, op.End, 0, func(k string) *kvState { s := *at(k); return &s })
	case KindTxn:
		for _, t := range op.Ops {
			if reason := p.deleteRange(c, t.Key, t.End, 0, func(k string) *kvState { s := *at(k); return &s }); reason != "" {
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
// write that was called only after the read returned.
func (p *prepared) checkFuture(writers map[int64]*checked) string {
	for i := range p.ops {
		c := &p.ops[i]
		if !c.op.Serializable || c.rev == 0 {
			continue
		}
		if w, ok := writers[c.rev]; ok && w.op.Call > c.ret {
			return fmt.Sprintf("%s, which returned at %d, saw revision %d, created by %s called later, at %d",
				p.describe(c), c.ret, c.rev, p.describe(w), w.op.Call)
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
