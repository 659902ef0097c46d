package linearizability

import (
	"fmt"
	"slices"
	"strings"
)

// Locks. A run with lock users keeps, beside its History, a record of
// their use of one lock (Locks), etcd's concurrency.Mutex on a key prefix:
// each user takes a session (a lease), puts its own key under the prefix
// with it if that key has no create revision yet (the acquire, a cas that
// expects the key absent), and owns the lock once every key under the
// prefix created before its own is gone; the live key with the smallest
// create revision owns the lock. Inside the critical section it makes
// fenced writes: a cas on its own key from the value it last wrote, so
// that a user whose session expired under it (its key deleted by the
// revoke) is refused. It releases the lock by deleting its key.
//
// CheckLocks replays the history's writes to the prefix in revision order
// (acquires, fenced writes, releases and the revokes of the sessions, all
// in the history with their revisions once resolved) and checks one rule:
// at the revision of every fenced write that succeeded, the writer's key
// is the live key with the smallest create revision under the prefix. A
// fenced write that succeeded while another key owned the lock means two
// holders. A fenced write that was refused (its cas failed: the session
// expired and the key is gone) is what fencing is for, and fine.

// Locks is what a run's lock users did with the lock.
type Locks struct {
	// Prefix is the lock's: every lock key is under it.
	Prefix string `json:"prefix"`
	// Holds are the users' attempts on the lock, one per session, in the
	// order they began.
	Holds []LockHold `json:"holds"`
}

// LockHold is one user's attempt on the lock with one session.
type LockHold struct {
	// User names the lock user ("lock user 2").
	User string `json:"user"`
	// Lease is the session's lease; Key the user's lock key.
	Lease int64  `json:"lease"`
	Key   string `json:"key"`
	// Acquires are its acquires (retries included), by history index.
	Acquires []int `json:"acquires,omitempty"`
	// Owned is when it concluded that it owned the lock; 0 if it never did.
	Owned int64 `json:"owned,omitempty"`
	// Fenced are its fenced writes, by history index.
	Fenced []int `json:"fenced,omitempty"`
	// Release is its release by history index, -1 if it made none.
	Release int `json:"release"`
}

// LockResult is the lock check's verdict and what it judged.
type LockResult struct {
	// Reason is the first fenced write that succeeded without owning the
	// lock, "" if none did.
	Reason string
	// Holds counts the attempts, Owned those that owned the lock; Fenced
	// the fenced writes that succeeded and were judged, Refused those the
	// fence refused, Undecided those a write of unknown revision kept from
	// being judged.
	Holds, Owned, Fenced, Refused, Undecided int
}

// Validate checks the record against its history: every operation it
// names is in range, of the right kind, on the hold's key under the
// prefix.
func (l *Locks) Validate(h History) error {
	if l.Prefix == "" && len(l.Holds) > 0 {
		return fmt.Errorf("locks: holds without a prefix")
	}
	for i, hd := range l.Holds {
		if !strings.HasPrefix(hd.Key, l.Prefix) {
			return fmt.Errorf("holds[%d]: key %q is not under the prefix %q", i, hd.Key, l.Prefix)
		}
		check := func(what string, op int, kind Kind) error {
			switch {
			case op < 0 || op >= len(h.Operations):
				return fmt.Errorf("holds[%d]: %s %d is out of range", i, what, op)
			case h.Operations[op].Kind != kind || h.Operations[op].Key != hd.Key:
				return fmt.Errorf("holds[%d]: %s history[%d] (%s) is not a %s of %s", i, what, op, Describe(&h.Operations[op]), kind, hd.Key)
			}
			return nil
		}
		for _, op := range hd.Acquires {
			if err := check("acquire", op, KindCAS); err != nil {
				return err
			}
		}
		for _, op := range hd.Fenced {
			if err := check("fenced write", op, KindCAS); err != nil {
				return err
			}
		}
		if hd.Release != -1 {
			if err := check("release", hd.Release, KindDelete); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckLocks checks that no two users held the lock at once (see the top
// of this file).
func CheckLocks(h History, l Locks, resolved map[int]Resolution) LockResult {
	var res LockResult
	if err := l.Validate(h); err != nil {
		res.Reason = "the lock record is invalid: " + err.Error()
		return res
	}
	res.Holds = len(l.Holds)
	fenced := make(map[int]*LockHold)
	owner := make(map[string]*LockHold)
	for i := range l.Holds {
		hd := &l.Holds[i]
		if hd.Owned != 0 {
			res.Owned++
		}
		owner[hd.Key] = hd
		for _, op := range hd.Fenced {
			fenced[op] = hd
			if o := &h.Operations[op]; o.Outcome == OutcomeOK && !o.Succeeded {
				res.Refused++
			}
		}
	}
	under := func(k string) bool { return strings.HasPrefix(k, l.Prefix) }
	rp := newReplay(&h, resolved, under)
	// A write of unknown revision may have touched the prefix.
	unsure := slices.ContainsFunc(rp.spans, func(s [2]string) bool { return spanMeetsPrefix(s[0], s[1], l.Prefix) })
	for _, w := range rp.writes {
		rp.apply(w, 0)
		hd := fenced[w.op]
		if hd == nil {
			continue
		}
		mine := rp.keys[hd.Key]
		if rp.uncertain(hd.Key) || mine == nil || !mine.exists {
			res.Undecided++ // the revision pass judges a cas on a key it does not have
			continue
		}
		first := ""
		for _, k := range rp.sortedKeys() {
			if s := rp.keys[k]; s.exists && !rp.uncertain(k) && (first == "" || s.create < rp.keys[first].create) {
				first = k
			}
		}
		switch {
		case first != hd.Key:
			other := rp.keys[first]
			who := "no lock user's"
			if o := owner[first]; o != nil {
				who = o.User + "'s"
			}
			res.Reason = fmt.Sprintf("two holders: history[%d] (%s), a fenced write of %s, succeeded at revision %d, when its key %s (created at revision %d) did not own the lock: %s key %s, created at revision %d, did",
				w.op, Describe(&h.Operations[w.op]), hd.User, w.rev, describeKey(hd.Key), mine.create, who, describeKey(first), other.create)
			return res
		case unsure:
			res.Undecided++
		default:
			res.Fenced++
		}
	}
	return res
}

// spanMeetsPrefix reports whether the key or range [key, end) (end as an
// Operation's) holds some key under prefix.
func spanMeetsPrefix(key, end, prefix string) bool {
	return overlaps(TxnOp{Key: key, End: end}, TxnOp{Key: prefix, End: PrefixEnd(prefix)})
}
