package node_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/plumbdb/plumb/node"
)

// TestMemberUpdateRefusesBadURLs: member update with no peer URL, or one
// etcd's types.NewURLs refuses, fails with ErrMemberBadURLs and leaves the
// member where it was; a member moved to an address nobody can dial would
// be cut off from the cluster for good. A URL with spaces around it is
// stored without them, as etcd stores it.
func TestMemberUpdateRefusesBadURLs(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader()
	f := c.follower()
	before, _ := c.nodes[lead].PeerURL(f)
	for _, tc := range []struct {
		name string
		urls []string
	}{
		{"no URL", nil},
		{"an empty URL", []string{""}},
		{"no scheme", []string{"127.0.0.9:2380"}},
		{"another scheme", []string{"ftp://127.0.0.9:2380"}},
		{"no port", []string{"http://127.0.0.9"}},
		{"a path", []string{"http://127.0.0.9:2380/raft"}},
		{"unparsable", []string{"http://[::1:2380"}},
		{"one bad among good", []string{"http://127.0.0.9:2380", "http//127.0.0.9:2381"}},
	} {
		r := c.do(lead, node.Request{MemberUpdate: &pb.MemberUpdateRequest{ID: f, PeerURLs: tc.urls}})
		if !errors.Is(r.Err, node.ErrMemberBadURLs) {
			t.Errorf("%s %q: got %v, want %v", tc.name, tc.urls, r.Err, node.ErrMemberBadURLs)
		}
		for _, id := range c.ids {
			if got, _ := c.nodes[id].PeerURL(f); got != before {
				t.Fatalf("%s %q: member %x now sends to %q, want %q still", tc.name, tc.urls, id, got, before)
			}
		}
	}
	req := &pb.MemberUpdateRequest{ID: f, PeerURLs: []string{" http://127.0.0.9:2380 "}}
	if r := c.do(lead, node.Request{MemberUpdate: req}); r.Err != nil {
		t.Fatalf("a URL with spaces around it: %v", r.Err)
	}
	c.tick(2)
	for _, id := range c.ids {
		if got, _ := c.nodes[id].PeerURL(f); got != "http://127.0.0.9:2380" {
			t.Errorf("member %x sends to %q, want the URL without its spaces", id, got)
		}
	}
	if req.PeerURLs[0] != " http://127.0.0.9:2380 " {
		t.Errorf("the caller's request was changed: %q", req.PeerURLs)
	}
}

// TestMemberAddRefusesBadURLs: member add checks its URLs the same way,
// before anything else about the request.
func TestMemberAddRefusesBadURLs(t *testing.T) {
	c := newCluster(t, 1)
	lead := c.leader()
	for _, urls := range [][]string{nil, {"unix//sock"}, {"https://127.0.0.9"}} {
		r := c.do(lead, node.Request{MemberAdd: &pb.MemberAddRequest{PeerURLs: urls}})
		if !errors.Is(r.Err, node.ErrMemberBadURLs) {
			t.Errorf("member add %q: got %v, want %v", urls, r.Err, node.ErrMemberBadURLs)
		}
	}
	if n := len(c.nodes[lead].Members()); n != 1 {
		t.Fatalf("%d members after refused adds, want 1", n)
	}
}
