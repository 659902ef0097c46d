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
//
// Its calls act for the client whose call made them: the Lock and
// Election servers copy that client's identity into the context of every
// call they make (authenticator.act: its token, or the user its
// certificate named, which the member verified). The server believes
// such a user only on a connection of this listener (actingAddr), which
// nothing outside the process can reach. (An interceptor on this client
// would not do: clientv3 opens watch streams on its own context, with
// only the outgoing metadata of the caller's.) The JSON gateway has an
// in-memory listener of its own (gatewayL), whose calls carry what the
// HTTP client sent and nothing more.
type selfClient struct {
	l        net.Listener      // the self client's, whose connections are actingAddr
	gatewayL *bufconn.Listener // the JSON gateway's
	cli      *clientv3.Client
	once     sync.Once
	err      error // close's
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
	return &selfClient{l: actingListener{l}, gatewayL: bufconn.Listen(selfBufferBytes), cli: cli}, nil
}

// actingListener marks its connections' remote address as actingAddr.
type actingListener struct{ net.Listener }

func (l actingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return actingConn{c}, nil
}

type actingConn struct{ net.Conn }

func (actingConn) RemoteAddr() net.Addr { return actingAddr{} }

// actingAddr is the remote address of the self client's connections.
type actingAddr struct{}

func (actingAddr) Network() string { return "in-process" }
func (actingAddr) String() string  { return "the member's own client" }

// close ends the client's calls and streams. The listener stays open for
// the gRPC server to close when it stops (one closed under it would look
// like a failed listener). Later calls return the first one's error.
func (c *selfClient) close() error {
	c.once.Do(func() { c.err = c.cli.Close() })
	return c.err
}
