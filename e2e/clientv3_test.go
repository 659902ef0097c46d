package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestClientV3 drives a 3-member cluster with etcd's own Go client: the
// key-value API, transactions, membership, status, and etcd's errors, each
// as clientv3's typed error.
func TestClientV3(t *testing.T) {
	c := newCluster(t, 3)
	cli := c.client()
	ctx := ctxT(t)

	put, err := cli.Put(ctx, "/app/config/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/app/config/b", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/other", "x"); err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, "/app/config/a")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "1" || got.Kvs[0].ModRevision != put.Header.Revision {
		t.Fatalf("get /app/config/a: %v %v, want value 1 at revision %d", got, err, put.Header.Revision)
	}
	prefix, err := cli.Get(ctx, "/app/", clientv3.WithPrefix())
	if err != nil || prefix.Count != 2 || string(prefix.Kvs[0].Key) != "/app/config/a" || string(prefix.Kvs[1].Key) != "/app/config/b" {
		t.Fatalf("get --prefix /app/: %v %v", prefix, err)
	}
	// Every member answers for the same cluster, each with its own ID, and a
	// serializable read on each sees the write once it has applied it.
	ids := map[uint64]bool{}
	for _, m := range c.members {
		one := c.client(m.endpoint())
		var r *clientv3.GetResponse
		for range 50 {
			if r, err = one.Get(ctx, "/other", clientv3.WithSerializable()); err == nil && len(r.Kvs) == 1 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("%s: serializable get /other: %v %v", m.name, r, err)
		}
		if r.Header.ClusterId != put.Header.ClusterId {
			t.Errorf("%s: cluster ID %x, want %x", m.name, r.Header.ClusterId, put.Header.ClusterId)
		}
		ids[r.Header.MemberId] = true
	}
	if len(ids) != 3 {
		t.Errorf("member IDs in headers: %v, want 3 distinct", ids)
	}

	del, err := cli.Delete(ctx, "/app/", clientv3.WithPrefix())
	if err != nil || del.Deleted != 2 {
		t.Fatalf("del --prefix /app/: %v %v", del, err)
	}

	// Compare-and-swap: the first txn wins, the second sees the new value.
	if _, err := cli.Put(ctx, "lock", "free"); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("lock"), "=", "free")).
			Then(clientv3.OpPut("lock", "held")).Else(clientv3.OpGet("lock")).Commit()
		if err != nil || txn.Succeeded != want {
			t.Fatalf("cas %d: %v %v, want succeeded=%v", i, txn, err, want)
		}
		if !want && string(txn.Responses[0].GetResponseRange().Kvs[0].Value) != "held" {
			t.Fatalf("the losing cas should read the winner's value: %v", txn.Responses[0])
		}
	}
	create, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision("fresh"), "=", 0)).
		Then(clientv3.OpPut("fresh", "v")).Commit()
	if err != nil || !create.Succeeded {
		t.Fatalf("create-if-absent: %v %v", create, err)
	}

	testMembership(t, c, cli)
	testStatus(t, c, cli)
	testErrors(t, cli)
}

func testMembership(t *testing.T, c *cluster, cli *clientv3.Client) {
	ctx := ctxT(t)
	// Members publish their names and client URLs through raft once there
	// is a leader; give them a moment.
	var list *clientv3.MemberListResponse
	var err error
	for range 100 {
		list, err = cli.MemberList(ctx)
		if err == nil && allStarted(list) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || len(list.Members) != 3 || !allStarted(list) {
		t.Fatalf("member list: %v %v", list, err)
	}
	byName := map[string]string{}
	for _, m := range list.Members {
		byName[m.Name] = m.PeerURLs[0] + " " + m.ClientURLs[0]
	}
	for _, m := range c.members {
		if want := m.peerURL() + " " + m.clientURL(); byName[m.name] != want {
			t.Errorf("member %s: %q, want %q", m.name, byName[m.name], want)
		}
	}
}

func allStarted(l *clientv3.MemberListResponse) bool {
	for _, m := range l.Members {
		if m.Name == "" || len(m.ClientURLs) == 0 {
			return false
		}
	}
	return true
}

func testStatus(t *testing.T, c *cluster, cli *clientv3.Client) {
	ctx := ctxT(t)
	_, lead := c.waitLeader(5 * time.Second)
	for _, m := range c.members {
		st, err := cli.Status(ctx, m.endpoint())
		if err != nil {
			t.Fatalf("status %s: %v", m.name, err)
		}
		if st.DbSize <= 0 || st.Leader != lead || st.RaftIndex == 0 || st.RaftTerm == 0 || st.Version == "" {
			t.Errorf("status %s: %+v; want a non-zero db size, index, term, leader %x and a version", m.name, st, lead)
		}
	}
}

// testErrors: each of etcd's errors comes back as the error clientv3 knows.
func testErrors(t *testing.T, cli *clientv3.Client) {
	ctx := ctxT(t)
	rev := func() int64 {
		r, err := cli.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Revision
	}
	tooMany := make([]clientv3.Op, 129)
	for i := range tooMany {
		tooMany[i] = clientv3.OpPut(fmt.Sprintf("k%d", i), "v")
	}
	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"request too large", func() error {
			_, err := cli.Put(ctx, "big", strings.Repeat("x", 1600*1024))
			return err
		}, rpctypes.ErrRequestTooLarge},
		{"empty key", func() error { _, err := cli.Put(ctx, "", "v"); return err }, rpctypes.ErrEmptyKey},
		{"too many txn ops", func() error { _, err := cli.Txn(ctx).Then(tooMany...).Commit(); return err }, rpctypes.ErrTooManyOps},
		{"duplicate key in txn", func() error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")).Commit()
			return err
		}, rpctypes.ErrDuplicateKey},
		{"future revision", func() error {
			_, err := cli.Get(ctx, "x", clientv3.WithRev(rev()+1000))
			return err
		}, rpctypes.ErrFutureRev},
		{"compacted", func() error {
			r := rev()
			for i := range 3 {
				if _, err := cli.Put(ctx, "c", fmt.Sprint(i)); err != nil {
					return err
				}
			}
			if _, err := cli.Compact(ctx, r+2); err != nil {
				return err
			}
			_, err := cli.Get(ctx, "c", clientv3.WithRev(r+1))
			return err
		}, rpctypes.ErrCompacted},
		{"lease not found", func() error { _, err := cli.Put(ctx, "l", "v", clientv3.WithLease(12345)); return err }, rpctypes.ErrLeaseNotFound},
	} {
		err := tc.do()
		if !errors.Is(rpctypes.Error(err), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestNoLeader: once a member has lost its quorum it refuses writes with
// etcd's "no leader", which clientv3 reports as rpctypes.ErrNoLeader, and
// /health says why.
func TestNoLeader(t *testing.T) {
	c := newCluster(t, 3)
	survivor := c.members[0]
	c.stop(c.members[1])
	c.stop(c.members[2])
	cli := c.client(survivor.endpoint())
	deadline := time.Now().Add(5 * electionMs * time.Millisecond)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = cli.Put(ctx, "k", "v")
		cancel()
		if errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) {
		t.Fatalf("a put on a member without quorum: %v, want %v", err, rpctypes.ErrNoLeader)
	}
	body, code := httpGet(t, survivor.clientURL()+"/health")
	if code != 503 || !strings.Contains(body, `"health":"false"`) || !strings.Contains(body, "RAFT NO LEADER") {
		t.Errorf("/health without quorum: %d %s", code, body)
	}
}
