package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseCases need no lease but their own: each side grants its own (LEASE
// in the arguments), so IDs are masked. A lease granted just before the
// command has 99 s of its 100 left when it is read.
func leaseCases(dead string) []ctlCase {
	abc := []string{"zz/a", "1", "zz/b", "2", "zz/c", "3"}
	timeout := []string{"--endpoints", dead, "--command-timeout", "300ms"}
	return []ctlCase{
		{ids: true, args: []string{"lease", "grant", "100"}},
		{ids: true, args: []string{"lease", "grant", "100", "-w", "json"}},
		{ids: true, lease: 100, args: []string{"lease", "revoke", "LEASE"}},
		{ids: true, lease: 100, revisions: true, args: []string{"lease", "revoke", "LEASE", "-w", "json"}},
		{args: []string{"lease", "revoke", "1234"}},
		{ids: true, lease: 100, args: []string{"lease", "timetolive", "LEASE"}},
		{ids: true, lease: 100, reset: abc, leased: []string{"zz/l", "v"}, args: []string{"lease", "timetolive", "LEASE", "--keys"}},
		{ids: true, lease: 100, reset: abc, leased: []string{"zz/l", "v"}, revisions: true,
			args: []string{"lease", "timetolive", "--keys", "LEASE", "-w", "json"}},
		{args: []string{"lease", "timetolive", "1234"}},
		{args: []string{"lease", "timetolive", "1234", "-w", "json", "--keys"}},
		{ids: true, lease: 100, args: []string{"lease", "keep-alive", "--once", "LEASE"}},
		{ids: true, lease: 100, args: []string{"lease", "keep-alive", "LEASE", "--once", "-w", "json"}},
		{args: []string{"lease", "keep-alive", "--once", "1234"}},
		// A lease the server does not know ends the keep-alive at once.
		{args: []string{"lease", "keep-alive", "1234"}},
		{args: []string{"lease", "keep-alive", "1234", "-w", "json"}},
		{ids: true, lease: 100, reset: abc, args: []string{"put", "zz/a", "new", "--lease", "LEASE", "--prev-kv"}},
		{ids: true, lease: 100, reset: abc, leased: []string{"zz/l", "v"}, revisions: true, args: []string{"get", "zz/", "--prefix", "-w", "json"}},
		{reset: abc, args: []string{"put", "zz/a", "new", "--lease", "1234"}},
		{own: true, args: append([]string{"lease", "grant", "10"}, timeout...)},
		{own: true, args: append([]string{"lease", "revoke", "1234"}, timeout...)},
	}
}

func TestLeaseMatchesEtcdctl(t *testing.T) {
	ref := startEtcd(t)
	clearEtcdctlEnv(t)
	dead := freeAddr(t)
	t.Run("commands", func(t *testing.T) { ref.compare(t, leaseCases(dead)) })
	t.Run("put attaches", func(t *testing.T) { testPutLease(t, ref) })
	t.Run("list", func(t *testing.T) {
		// The server lists leases in no order, so the list is compared
		// with none and with one.
		ref.revokeAll(t)
		list := []ctlCase{{args: []string{"lease", "list"}}, {args: []string{"lease", "list", "-w", "json"}}}
		ref.compare(t, list)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := ref.client.Grant(ctx, 100); err != nil {
			t.Fatal(err)
		}
		ref.compare(t, list)
	})
	t.Run("keep-alive", func(t *testing.T) { testKeepAlive(t, ref) })
}

// testPutLease checks that kv put --lease attaches the key: the server
// lists it among the lease's keys.
func testPutLease(t *testing.T, ref *refServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := ref.client.Grant(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", lease.ID)
	if code, out, errOut := plumb(t, "kv", "put", "zz/leased", "v", "--lease", id, "--endpoints", ref.endpoint); code != exitOK || out != "OK\n" {
		t.Fatalf("kv put --lease %s: exit %d, stdout %q, stderr %q", id, code, out, errOut)
	}
	ttl, err := ref.client.TimeToLive(ctx, lease.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ttl.Keys, func(k []byte) bool { return string(k) == "zz/leased" }) {
		t.Errorf("lease %s has keys %q, want zz/leased among them", id, ttl.Keys)
	}
}

// revokeAll revokes every lease on the server.
func (r *refServer) revokeAll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leases, err := r.client.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Leases {
		if _, err := r.client.Revoke(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// testKeepAlive runs lease keep-alive on one lease, in both formats, side
// by side with etcdctl's: each prints its first renewal at once, then,
// once the lease is revoked, its next renewal finds it gone and ends it.
// The lease's TTL of 6 s puts the next renewal 2 s after the first.
func testKeepAlive(t *testing.T, ref *refServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := ref.client.Grant(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", lease.ID)
	var pairs [][2]*ctlProc
	for _, format := range []string{"simple", "json"} {
		e, p := ref.startBoth(t, ctlCase{args: []string{"lease", "keep-alive", id, "-w", format}})
		pairs = append(pairs, [2]*ctlProc{e, p})
	}
	for _, pair := range pairs {
		pair[0].waitLines(t, 1)
		pair[1].waitLines(t, 1)
	}
	if _, err := ref.client.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	for _, pair := range pairs {
		sameOutcome(t, pair[1].name, pair[1].wait(t), pair[0].wait(t), nil)
	}
}
