package main

// lock and elect are etcdctl's, over clientv3/concurrency as etcdctl uses
// it: a session (a lease kept alive) per command, a Mutex or an Election
// under the name given, so that plumb and etcdctl wait for each other's
// locks and see each other's leaders. Two things differ, and neither shows
// in the output: the session's lease is granted under --command-timeout
// (etcdctl waits for ever for an unreachable cluster), and it is revoked
// on the way out (etcdctl leaves it to expire, 10 s after a lock, 60 s
// after an election, and `lease list` shows it until then).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// electionSessionTTLSeconds is the TTL of elect's session: concurrency's
// default, which etcdctl's elect uses.
const electionSessionTTLSeconds = 60

func lockCommand() *cli.Command {
	return &cli.Command{
		Name: "lock",
		Usage: "acquire a named lock and hold it until interrupted (SIGINT, SIGTERM), printing its key; " +
			"or run a command while holding it, with ETCD_LOCK_KEY and ETCD_LOCK_REV in its environment " +
			"(exit: the command's status; else 0: released, 1: failed, 2: bad input)",
		ArgsUsage: "NAME [-- CMD ARGS...]",
		Flags: withClientFlags(
			&cli.IntFlag{Name: "ttl", Value: 10, Usage: "TTL in seconds of the session holding the lock"},
		),
		Action: lock,
	}
}

func lock(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	args := positional(c)
	ttl := c.Int("ttl")
	switch {
	case len(args) == 0:
		return badInput(errors.New("lock takes a lock name argument and an optional command to execute"))
	case ttl <= 0:
		// concurrency would take the 60 s default without a word.
		return badInput(fmt.Errorf("--ttl must be positive, not %d", ttl))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	client, session, err := cc.session(ctx, ttl)
	if err != nil {
		return serverError(c, err)
	}
	defer client.Close()
	defer cc.closeSession(session)
	m := concurrency.NewMutex(session, args[0])
	if err := m.Lock(ctx); err != nil {
		return serverError(c, err)
	}
	if len(args) > 1 {
		return runLocked(c, cc, m, args[1:])
	}
	resp, err := client.Get(ctx, m.Key())
	switch {
	case err != nil:
		return serverError(c, err)
	case len(resp.Kvs) == 0:
		return serverError(c, errors.New("lock lost on init"))
	}
	if err := cc.print(c, rangeView(cc, resp)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		if err := cc.unlock(c, m); err != nil {
			return serverError(c, err)
		}
		return nil
	case <-session.Done():
		return serverError(c, errors.New("session expired"))
	}
}

// runLocked runs command while m is held, then releases it. The command's
// exit status is the lock's, as in etcdctl (255 when a signal killed it).
// Its stdin is empty, as under etcdctl.
func runLocked(c *cli.Context, cc clientConfig, m *concurrency.Mutex, command []string) error {
	cmd := exec.Command(command[0], command[1:]...)
	// etcdctl puts the lock's variables before the inherited ones, so that
	// a command run under two nested locks sees the outer lock's key; here
	// the lock's own come last, and win.
	cmd.Env = append(os.Environ(), "ETCD_LOCK_KEY="+m.Key(), fmt.Sprintf("ETCD_LOCK_REV=%d", m.Header().GetRevision()))
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	runErr := cmd.Run()
	unlockErr := cc.unlock(c, m)
	var exit *exec.ExitError
	switch {
	case errors.As(runErr, &exit):
		return failure(c, exit.ExitCode(), runErr)
	case runErr != nil:
		return serverError(c, runErr)
	case unlockErr != nil:
		return serverError(c, unlockErr)
	}
	return nil
}

// unlock releases m under --command-timeout; a signal that ended the wait
// for it must not cut the release short.
func (cc clientConfig) unlock(c *cli.Context, m *concurrency.Mutex) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), cc.commandTimeout)
	defer cancel()
	return m.Unlock(ctx)
}

// session dials the endpoints and opens a concurrency session with a lease
// of ttlSeconds, granted under --command-timeout.
func (cc clientConfig) session(ctx context.Context, ttlSeconds int) (*clientv3.Client, *concurrency.Session, error) {
	client, err := cc.dial(cc.endpoints)
	if err != nil {
		return nil, nil, err
	}
	grantCtx, cancel := context.WithTimeout(ctx, cc.commandTimeout)
	defer cancel()
	lease, err := client.Grant(grantCtx, int64(ttlSeconds))
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	session, err := concurrency.NewSession(client, concurrency.WithLease(lease.ID))
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, session, nil
}

// closeSession revokes the session's lease, under --command-timeout. A
// session that expired has nothing left to revoke, and a failure leaves
// the lease to expire on its own: nothing to report either way.
func (cc clientConfig) closeSession(s *concurrency.Session) {
	s.Orphan()
	ctx, cancel := context.WithTimeout(context.Background(), cc.commandTimeout)
	defer cancel()
	_, _ = s.Client().Revoke(ctx, s.Lease())
}

// rangeView is a get's response as kv get prints it.
func rangeView(cc clientConfig, resp *clientv3.GetResponse) clientView {
	return clientView{
		json: (*pb.RangeResponse)(resp),
		simple: func(w *bytes.Buffer) {
			for _, kv := range resp.Kvs {
				writeKV(w, cc.hex, false, kv)
			}
		},
	}
}

func electCommand() *cli.Command {
	return &cli.Command{
		Name: "elect",
		Usage: "campaign in a named election with a proposal, print the key once elected and lead until interrupted (SIGINT, SIGTERM); " +
			"or, with -l, print each leader as it is elected (exit 0: resigned or stopped listening, 1: failed, 2: bad input)",
		ArgsUsage: "NAME [PROPOSAL]",
		Flags: withClientFlags(
			&cli.BoolFlag{Name: "listen", Aliases: []string{"l"}, Usage: "observation mode: print the leaders"},
		),
		Action: elect,
	}
}

func elect(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	args := positional(c)
	listen := c.Bool("listen")
	switch {
	case len(args) != 1 && len(args) != 2:
		return badInput(errors.New("elect takes one election name argument and an optional proposal argument"))
	case len(args) == 1 && !listen:
		return badInput(errors.New("no proposal argument but -l not set"))
	case len(args) == 2 && listen:
		return badInput(errors.New("proposal given but -l is set"))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	client, session, err := cc.session(ctx, electionSessionTTLSeconds)
	if err != nil {
		return serverError(c, err)
	}
	defer client.Close()
	defer cc.closeSession(session)
	e := concurrency.NewElection(session, args[0])
	if listen {
		return observe(ctx, c, cc, e)
	}
	return campaign(ctx, c, cc, session, e, args[1])
}

// observe prints the leader, then each new one, until interrupted.
func observe(ctx context.Context, c *cli.Context, cc clientConfig, e *concurrency.Election) error {
	for resp := range e.Observe(ctx) {
		if err := cc.print(c, rangeView(cc, resp)); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		return serverError(c, errors.New("elect: observer lost"))
	}
	return nil
}

// campaign waits to be elected, prints the leader's key and value, and
// resigns when interrupted.
func campaign(ctx context.Context, c *cli.Context, cc clientConfig, s *concurrency.Session, e *concurrency.Election, proposal string) error {
	if err := e.Campaign(ctx, proposal); err != nil {
		return serverError(c, err)
	}
	resp, err := s.Client().Get(ctx, e.Key())
	if err != nil {
		return serverError(c, err)
	}
	if err := cc.print(c, rangeView(cc, resp)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-s.Done():
		return serverError(c, errors.New("elect: session expired"))
	}
	resignCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cc.commandTimeout)
	defer cancel()
	if err := e.Resign(resignCtx); err != nil {
		return serverError(c, err)
	}
	return nil
}
