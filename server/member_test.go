package server

import (
	"context"
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestMemberUpdateRefusesBadURLs: MemberUpdate with no peer URL or a
// malformed one gets etcd's ErrMemberBadURLs, and the member keeps its peer
// URL (it would otherwise be cut off from its peers). clientv3 checks the
// URLs before it sends them; other clients do not, so the request goes
// through etcd's gRPC stub on clientv3's connection.
func TestMemberUpdateRefusesBadURLs(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	s := startT(t, cfg)
	defer s.Stop()
	cli := clientOf(t, cfg)
	putRetrying(t, cli, "k", "v")
	for _, urls := range [][]string{nil, {""}, {"127.0.0.1:2380"}, {"http://127.0.0.1"}, {"http://127.0.0.1:2380/x"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := pb.NewClusterClient(cli.ActiveConnection()).MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: s.ID(), PeerURLs: urls})
		err = rpctypes.Error(err)
		cancel()
		if !errors.Is(err, rpctypes.ErrMemberBadURLs) {
			t.Errorf("member update to %q: got %v, want %v", urls, err, rpctypes.ErrMemberBadURLs)
		}
	}
	resp, err := cli.MemberList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Members) != 1 || len(resp.Members[0].PeerURLs) != 1 || resp.Members[0].PeerURLs[0] != cfg.InitialAdvertisePeerURLs[0] {
		t.Fatalf("members after refused updates: %v, want the peer URL %s unchanged", resp.Members, cfg.InitialAdvertisePeerURLs[0])
	}
}
