package faults

import (
	"cmp"
	"time"

	"gopkg.in/yaml.v3"
)

// Leases are the simulated lease holders: applications that hold etcd
// leases as clientv3 does. Each is granted a lease, keeps it alive (a
// keep-alive every TTL/3, again every 500 ms while unanswered) and puts
// keys with it, under a key space of its own. After a life drawn for each
// lease it stops keeping it alive (the Expire share) so that it expires,
// or revokes it (the Revoke share); the others keep theirs to the end.
// Once it learns that its lease is gone it is granted another.
type Leases struct {
	// Holders is how many: 0 (the default) without a leases section, 3
	// with one; 0..100.
	Holders int
	// TTL is the TTL each lease asks for, in whole seconds, at least
	// etcd's minimum for the cluster (MinLeaseTTL). Default 5s, or that
	// minimum when it is more; at most 1h.
	TTL time.Duration
	// Keys is how many keys a holder puts with each lease; default 4,
	// 1..100.
	Keys int
	// PutEvery is the mean time between a holder's puts (exponentially
	// distributed); default 500ms, 1ms..1h.
	PutEvery time.Duration
	// Life is the mean time a holder keeps a lease before it stops
	// keeping it alive or revokes it (exponentially distributed);
	// default 5s, 1ms..1h.
	Life time.Duration
	// Expire and Revoke are the shares of leases whose holders, at the
	// end of their life, stop keeping them alive, and revoke them;
	// defaults 0.4 and 0.4, their sum at most 1.
	Expire, Revoke float64
}

// Locks are the simulated lock users: applications that take one lock
// with etcd's concurrency.Mutex recipe on a session (a lease kept alive as
// a lease holder's is), make fenced writes while they hold it, and release
// it.
type Locks struct {
	// Users is how many: 0 (the default) without a locks section, 3 with
	// one; 0..100.
	Users int
	// TTL is the session lease's TTL, as Leases.TTL.
	TTL time.Duration
	// Writes is how many fenced writes a user makes while it holds the
	// lock; default 3, 1..100.
	Writes int
	// WriteEvery is the pause before each fenced write; default 100ms,
	// 1ms..1h.
	WriteEvery time.Duration
	// Every is the mean time between a user's releases and its next
	// attempt (exponentially distributed); default 1s, 1ms..1h.
	Every time.Duration
	// Stall is the share of holds in which the user stalls in the
	// critical section (as a process paused by GC or a VM migration):
	// its session is not kept alive, and its next fenced write comes
	// only after the session would have expired. Default 0.2, 0..1.
	Stall float64
}

// ExpectedOperations estimates the history operations the holders make
// in d: their puts.
func (l Leases) ExpectedOperations(d time.Duration) float64 {
	if l.Holders == 0 {
		return 0
	}
	return float64(l.Holders) * d.Seconds() / l.PutEvery.Seconds()
}

// ExpectedOperations bounds the history operations the users make in d:
// at most one hold every Every each, of an acquire, reads while it waits,
// its fenced writes and a release.
func (l Locks) ExpectedOperations(d time.Duration) float64 {
	if l.Users == 0 {
		return 0
	}
	return float64(l.Users) * d.Seconds() / l.Every.Seconds() * float64(l.Writes+lockReadsPerHold+2)
}

// lockReadsPerHold is what ExpectedOperations allows for the reads a user
// makes while it waits for the lock.
const lockReadsPerHold = 8

// Limits of the leases and locks sections.
const (
	maxHolders   = 100
	maxLeaseKeys = 100
	maxLockUsers = 100
	maxWrites    = 100
	// defaultLeaseTTL is the TTL leases and sessions ask for unless the
	// cluster's minimum is more.
	defaultLeaseTTL = 5 * time.Second
)

// MinLeaseTTL is etcd's minimum lease TTL for a cluster: one and a half
// election timeouts, rounded up to a whole second. A shorter lease could
// expire during an election; etcd grants the minimum instead.
func (c Cluster) MinLeaseTTL() time.Duration {
	return (3*c.ElectionTimeout/2 + time.Second - 1).Truncate(time.Second)
}

// leases reads the leases section.
func (p *parser) leases(n *yaml.Node, l *Leases, c Cluster) error {
	at := path{field: "leases"}
	s, err := p.section(at, n, "holders", "ttl", "keys", "put_every", "life", "expire", "revoke")
	if err != nil {
		return err
	}
	*l = Leases{Holders: 3, TTL: max(defaultLeaseTTL, c.MinLeaseTTL()), Keys: 4, PutEvery: 500 * time.Millisecond,
		Life: 5 * time.Second, Expire: 0.4, Revoke: 0.4}
	s.integer("holders", &l.Holders, 0, maxHolders)
	s.integer("keys", &l.Keys, 1, maxLeaseKeys)
	s.duration("put_every", &l.PutEvery, time.Millisecond, maxDuration)
	s.duration("life", &l.Life, time.Millisecond, maxDuration)
	s.share("expire", &l.Expire)
	s.share("revoke", &l.Revoke)
	if s.err != nil {
		return s.err
	}
	if l.Expire+l.Revoke > 1 {
		return p.errorf(cmp.Or(s.f.get("revoke"), s.f.get("expire"), n), "leases: expire %v and revoke %v are more than 1 together (they are shares of the leases)", l.Expire, l.Revoke)
	}
	return p.leaseTTL(at, s, n, &l.TTL, c)
}

// locks reads the locks section.
func (p *parser) locks(n *yaml.Node, l *Locks, c Cluster) error {
	at := path{field: "locks"}
	s, err := p.section(at, n, "users", "ttl", "writes", "write_every", "every", "stall")
	if err != nil {
		return err
	}
	*l = Locks{Users: 3, TTL: max(defaultLeaseTTL, c.MinLeaseTTL()), Writes: 3, WriteEvery: 100 * time.Millisecond,
		Every: time.Second, Stall: 0.2}
	s.integer("users", &l.Users, 0, maxLockUsers)
	s.integer("writes", &l.Writes, 1, maxWrites)
	s.duration("write_every", &l.WriteEvery, time.Millisecond, maxDuration)
	s.duration("every", &l.Every, time.Millisecond, maxDuration)
	s.share("stall", &l.Stall)
	if s.err != nil {
		return s.err
	}
	return p.leaseTTL(at, s, n, &l.TTL, c)
}

// leaseTTL reads a section's ttl: whole seconds, at least the cluster's
// minimum, at most maxDuration.
func (p *parser) leaseTTL(at path, s *section, n *yaml.Node, ttl *time.Duration, c Cluster) error {
	s.duration("ttl", ttl, time.Second, maxDuration)
	if s.err != nil {
		return s.err
	}
	v := cmp.Or(s.f.get("ttl"), n)
	switch {
	case *ttl%time.Second != 0:
		return p.errorf(v, "%s%v is not a whole number of seconds (etcd's TTLs are in seconds)", at.dot("ttl").prefix(), *ttl)
	case *ttl < c.MinLeaseTTL():
		return p.errorf(v, "%s%v is less than etcd's minimum for this cluster, %v (one and a half election timeouts of %v, rounded up to a second)",
			at.dot("ttl").prefix(), *ttl, c.MinLeaseTTL(), c.ElectionTimeout)
	}
	return nil
}
