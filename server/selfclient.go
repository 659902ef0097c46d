package server

import (
	"context"
	"fmt"
	"net"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
)

// selfBufferBytes is the in-memory connection's buffer each way.
const selfBufferBytes = 1 << 20

// selfClient is the member's client of its own gRPC services, for the
// services etcd builds on clientv3 (Lock, Election: etcd's v3client). It
// reaches the client gRPC server over an in-memory listener, so it needs
// no address of its own, no port and no TLS, and each of its calls is
// served as any client's is. It lives as long as the member.
type selfClient struct {
	l    *bufconn.Listener
	cli  *clientv3.Client
	once sync.Once
	err  error // close's
}

func newSelfClient() (*selfClient, error) {
	l := bufconn.Listen(selfBufferBytes)
	cli, err := clientv3.New(clientv3.Config{
		// The name is only a label: every connection is the in-memory one.
		Endpoints: []string{"in-process"},
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return l.DialContext(ctx)
		})},
		Logger: zap.NewNop(),
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("the member's in-process client: %w", err)
	}
	return &selfClient{l: l, cli: cli}, nil
}

// close ends the client's calls and streams. The listener stays open for
// the gRPC server to close when it stops (one closed under it would look
// like a failed listener). Later calls return the first one's error.
func (c *selfClient) close() error {
	c.once.Do(func() { c.err = c.cli.Close() })
	return c.err
}
