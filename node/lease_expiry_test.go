package node_test

import "testing"

// TestLeaseLivesItsTTLAfterTheAcknowledgement: a lease is renewed when a
// keep-alive is acknowledged, which happens between two ticks; it must
// then live its whole TTL. Counted from the last tick before the
// acknowledgement, its TTL's worth of ticks (50 here, 5 s at 100 ms) ends
// up to one tick early: the 50th tick after the acknowledgement comes less
// than 5 s after it. The revoke may come at the 51st, not before. The same
// holds from the grant. (The simulator's lease check found leases revoked
// up to one heartbeat interval before their holder's acknowledged
// keep-alive allowed.)
func TestLeaseLivesItsTTLAfterTheAcknowledgement(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	id := c.do(lead, grant(5, 0)).LeaseGrant.ID // 50 ticks
	c.do(lead, putLease("k", id))
	c.tick(45)
	if !c.exists(lead, "k") {
		t.Fatal("the lease expired before 50 ticks after its grant")
	}
	if r := c.do(lead, keepAlive(id)); r.Err != nil {
		t.Fatal(r.Err)
	}
	c.tick(50)
	for _, m := range c.ids {
		if !c.exists(m, "k") {
			t.Fatalf("member %x: the lease was revoked at the 50th tick after its keep-alive was acknowledged, less than its TTL of 5s (50 ticks) later", m)
		}
	}
	c.tick(2)
	for _, m := range c.ids {
		if c.exists(m, "k") {
			t.Fatalf("member %x still has the key 52 ticks after the last keep-alive of a 50-tick lease", m)
		}
	}
}
