package node_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

func alarmReq(action pb.AlarmRequest_AlarmAction, member uint64) node.Request {
	return node.Request{Alarm: &pb.AlarmRequest{Action: action, MemberID: member, Alarm: pb.AlarmType_NOSPACE}}
}

// TestAlarmsAreReplicated: the member that reaches --quota-backend-bytes
// proposes NOSPACE for itself through raft, and every member applies it:
// every member lists it and refuses puts, lease grants and transactions
// that put (deletes and compaction go on), a restart keeps it, and a
// disarm sent to any member clears it everywhere, as in etcd. Until the
// space is freed (delete, compact) writes raise it again.
func TestAlarmsAreReplicated(t *testing.T) {
	c := newClusterTuned(t, 3, func(cfg *node.Config) { cfg.QuotaBackendBytes = 4096 })
	full := c.follower()
	lead := c.leader()
	value := strings.Repeat("v", 256)
	var i int
	for ; i < 100; i++ {
		r := c.do(full, put(fmt.Sprintf("k/%03d", i), value))
		if errors.Is(r.Err, node.ErrNoSpace) {
			break
		}
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if i == 100 {
		t.Fatal("100 puts of 256 bytes never reached a quota of 4096 bytes")
	}
	c.tick(3)
	for _, id := range c.ids {
		alarms := c.nodes[id].Alarms()
		if len(alarms) != 1 || alarms[0].MemberID != full || alarms[0].Alarm != pb.AlarmType_NOSPACE {
			t.Fatalf("member %x lists alarms %v, want NOSPACE of %x on every member", id, alarms, full)
		}
	}
	if r := c.do(lead, put("small", "x")); !errors.Is(r.Err, node.ErrNoSpace) || r.Err.Error() != "etcdserver: mvcc: database space exceeded" {
		t.Fatalf("a put on another member with NOSPACE raised: %v", r.Err)
	}
	if r := c.do(lead, node.Request{LeaseGrant: &pb.LeaseGrantRequest{TTL: 60}}); !errors.Is(r.Err, node.ErrNoSpace) {
		t.Fatalf("a lease grant with NOSPACE raised: %v", r.Err)
	}
	if r := c.do(lead, alarmReq(pb.AlarmRequest_GET, 0)); r.Err != nil || len(r.Alarm.Alarms) != 1 || r.Alarm.Header == nil {
		t.Fatalf("alarm list on another member: %+v", r)
	}
	// A restart keeps it: it is in the backend.
	c.start(lead)
	c.settle()
	if alarms := c.nodes[lead].Alarms(); len(alarms) != 1 {
		t.Fatalf("after a restart: alarms %v", alarms)
	}
	lead = c.leader()
	// Free the space: deletes and compaction are allowed.
	del := c.do(lead, node.Request{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("k/"), RangeEnd: []byte("k0")}})
	if del.Err != nil {
		t.Fatalf("a delete with NOSPACE raised: %v", del.Err)
	}
	if r := c.do(lead, node.Request{Compaction: &pb.CompactionRequest{Revision: del.DeleteRange.Header.Revision}}); r.Err != nil {
		t.Fatalf("a compaction with NOSPACE raised: %v", r.Err)
	}
	other := c.ids[0]
	if other == full {
		other = c.ids[1]
	}
	r := c.do(other, alarmReq(pb.AlarmRequest_DEACTIVATE, full))
	if r.Err != nil || len(r.Alarm.Alarms) != 1 || r.Alarm.Alarms[0].MemberID != full {
		t.Fatalf("alarm disarm of %x on member %x: %+v", full, other, r)
	}
	c.tick(3)
	for _, id := range c.ids {
		if alarms := c.nodes[id].Alarms(); len(alarms) != 0 {
			t.Fatalf("member %x still lists %v after the disarm", id, alarms)
		}
	}
	if r := c.do(full, put("after", "x")); r.Err != nil {
		t.Fatalf("a put after compaction and disarm: %v", r.Err)
	}
}

// TestAlarmActivateNeedsMember: etcd raises an alarm only for a member of
// the cluster; ACTIVATE of an unknown member applies as nothing.
func TestAlarmActivateNeedsMember(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	r := c.do(lead, alarmReq(pb.AlarmRequest_ACTIVATE, 12345))
	if r.Err != nil || len(r.Alarm.Alarms) != 0 {
		t.Fatalf("ACTIVATE for no member: %+v", r)
	}
	if r := c.do(lead, put("k", "v")); r.Err != nil {
		t.Fatalf("a put after an ignored ACTIVATE: %v", r.Err)
	}
	r = c.do(lead, alarmReq(pb.AlarmRequest_ACTIVATE, 0)) // 0: this member
	if r.Err != nil || len(r.Alarm.Alarms) != 1 || r.Alarm.Alarms[0].MemberID != lead {
		t.Fatalf("ACTIVATE of this member: %+v", r)
	}
	if r := c.do(c.follower(), put("k", "v")); !errors.Is(r.Err, node.ErrNoSpace) {
		t.Fatalf("a put on a follower once the leader's NOSPACE applied: %v", r.Err)
	}
}

// TestNoSpaceRefusedWhenApplied: a put proposed before NOSPACE was applied
// but committed after it is refused when applied, on every member alike
// (etcd's capped applier), so no member's state takes it.
func TestNoSpaceRefusedWhenApplied(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	activate := alarmReq(pb.AlarmRequest_ACTIVATE, lead)
	activate.ID = 1001
	late := put("late", "x")
	late.ID = 1002
	c.nodes[lead].Submit(activate)
	c.nodes[lead].Submit(late)
	c.settle()
	if r := c.replies[1002]; !errors.Is(r.Err, node.ErrNoSpace) {
		t.Fatalf("a put committed after NOSPACE: %+v", r)
	}
	for _, id := range c.ids {
		if resp, err := c.nodes[id].Read(&pb.RangeRequest{Key: []byte("late")}); err != nil || len(resp.Kvs) != 0 {
			t.Fatalf("member %x holds the refused put: %v %v", id, resp, err)
		}
	}
}
