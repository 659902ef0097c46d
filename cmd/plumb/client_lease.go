package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func leaseCommand() *cli.Command {
	return &cli.Command{
		Name:  "lease",
		Usage: "grant, revoke, keep alive and inspect leases, as etcdctl lease",
		Subcommands: []*cli.Command{
			leaseGrantCommand(), leaseRevokeCommand(), leaseTimeToLiveCommand(), leaseListCommand(), leaseKeepAliveCommand(),
		},
	}
}

func leaseGrantCommand() *cli.Command {
	return &cli.Command{
		Name:      "grant",
		Usage:     "grant a lease of TTL seconds and print its ID (exit 0: granted, 1: the server failed it, 2: bad input)",
		ArgsUsage: "TTL",
		Flags:     withClientFlags(),
		Action:    leaseGrant,
	}
}

func leaseGrant(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	args := positional(c)
	if len(args) != 1 {
		return badInput(errors.New("lease grant command needs TTL argument"))
	}
	ttl, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return badInput(fmt.Errorf("bad TTL (%w)", err))
	}
	var resp *clientv3.LeaseGrantResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.Grant(ctx, ttl)
		return err
	})
	if err != nil {
		return serverError(c, fmt.Errorf("failed to grant lease (%w)", err))
	}
	// etcdctl's JSON is the client's response type, its header's fields
	// inlined, not the protobuf response the kv commands print.
	return cc.print(c, clientView{
		json:   resp,
		simple: func(w *bytes.Buffer) { fmt.Fprintf(w, "lease %016x granted with TTL(%ds)\n", resp.ID, resp.TTL) },
	})
}

// leaseArg reads a lease ID in hexadecimal, as every lease command prints it.
func leaseArg(arg string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(arg, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("bad lease ID arg (%w), expecting ID in Hex", err)
	}
	return clientv3.LeaseID(id), nil
}

// oneLease reads the one lease ID a command takes; missing is etcdctl's
// message for a wrong number of arguments.
func oneLease(c *cli.Context, missing string) (clientv3.LeaseID, error) {
	args := positional(c)
	if len(args) != 1 {
		return 0, errors.New(missing)
	}
	return leaseArg(args[0])
}

func leaseRevokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "revoke a lease, deleting the keys attached to it (exit 0: revoked, 1: the server failed it, 2: bad input)",
		ArgsUsage: "LEASE_ID   (in hexadecimal, as lease grant prints it)",
		Flags:     withClientFlags(),
		Action:    leaseRevoke,
	}
}

func leaseRevoke(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	id, err := oneLease(c, "lease revoke command needs 1 argument")
	if err != nil {
		return badInput(err)
	}
	var resp *clientv3.LeaseRevokeResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.Revoke(ctx, id)
		return err
	})
	if err != nil {
		return serverError(c, fmt.Errorf("failed to revoke lease (%w)", err))
	}
	return cc.print(c, clientView{
		json:   resp,
		simple: func(w *bytes.Buffer) { fmt.Fprintf(w, "lease %016x revoked\n", id) },
	})
}

func leaseTimeToLiveCommand() *cli.Command {
	return &cli.Command{
		Name:      "timetolive",
		Usage:     "print a lease's granted and remaining TTL (exit 0: answered, 2: the server failed it or bad input)",
		ArgsUsage: "LEASE_ID",
		Flags:     withClientFlags(&cli.BoolFlag{Name: "keys", Usage: "get keys attached to this lease"}),
		Action:    leaseTimeToLive,
	}
}

// leaseTimeToLive, leaseList and leaseKeepAlive --once wait at most
// --command-timeout for the server, where etcdctl waits for ever; a
// failure exits 2, etcdctl's ExitBadConnection for these three.
func leaseTimeToLive(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	id, err := oneLease(c, "lease timetolive command needs lease ID as argument")
	if err != nil {
		return badInput(err)
	}
	keys := c.Bool("keys")
	var opts []clientv3.LeaseOption
	if keys {
		opts = append(opts, clientv3.WithAttachedKeys())
	}
	var resp *clientv3.LeaseTimeToLiveResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.TimeToLive(ctx, id, opts...)
		return err
	})
	if err != nil {
		return failure(c, exitBadConnection, err)
	}
	return cc.print(c, clientView{
		json:   resp,
		simple: func(w *bytes.Buffer) { writeTimeToLive(w, resp, keys) },
	})
}

// writeTimeToLive prints a lease's TTLs; the server answers for a lease it
// does not know with a TTL of -1 and no granted TTL.
func writeTimeToLive(w *bytes.Buffer, resp *clientv3.LeaseTimeToLiveResponse, keys bool) {
	if resp.GrantedTTL == 0 && resp.TTL == -1 {
		fmt.Fprintf(w, "lease %016x already expired\n", resp.ID)
		return
	}
	fmt.Fprintf(w, "lease %016x granted with TTL(%ds), remaining(%ds)", resp.ID, resp.GrantedTTL, resp.TTL)
	if keys {
		names := make([]string, len(resp.Keys))
		for i, k := range resp.Keys {
			names[i] = string(k)
		}
		fmt.Fprintf(w, ", attached keys(%v)", names)
	}
	fmt.Fprintln(w)
}

func leaseListCommand() *cli.Command {
	return &cli.Command{
		Name:   "list",
		Usage:  "list the leases alive (exit 0: listed, 2: the server failed it or bad input)",
		Flags:  withClientFlags(),
		Action: leaseList,
	}
}

func leaseList(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	if c.NArg() > 0 {
		return badInput(fmt.Errorf("lease list takes no arguments, not %q", c.Args().First()))
	}
	var resp *clientv3.LeaseLeasesResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.Leases(ctx)
		return err
	})
	if err != nil {
		return failure(c, exitBadConnection, err)
	}
	return cc.print(c, clientView{
		json: resp,
		simple: func(w *bytes.Buffer) {
			fmt.Fprintf(w, "found %d leases\n", len(resp.Leases))
			for _, l := range resp.Leases {
				fmt.Fprintf(w, "%016x\n", l.ID)
			}
		},
	})
}

func leaseKeepAliveCommand() *cli.Command {
	return &cli.Command{
		Name: "keep-alive",
		Usage: "keep a lease alive, printing each renewal, until it expires or is revoked, or renew it once with --once " +
			"(exit 0: it ended, 2: the server failed it or bad input)",
		ArgsUsage: "LEASE_ID",
		Flags:     withClientFlags(&cli.BoolFlag{Name: "once", Usage: "renew the lease once and exit"}),
		Action:    leaseKeepAlive,
	}
}

func leaseKeepAlive(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	id, err := oneLease(c, "lease keep-alive command needs lease ID as argument")
	if err != nil {
		return badInput(err)
	}
	if c.Bool("once") {
		var resp *clientv3.LeaseKeepAliveResponse
		err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
			resp, err = client.KeepAliveOnce(ctx, id)
			return err
		})
		if err != nil {
			return failure(c, exitBadConnection, err)
		}
		return cc.print(c, keepAliveView(resp))
	}
	client, err := cc.dial(cc.endpoints)
	if err != nil {
		return failure(c, exitBadConnection, err)
	}
	defer client.Close()
	// The client renews the lease a third of its TTL after each renewal,
	// and closes the channel once the server says it is gone.
	renewals, err := client.KeepAlive(c.Context, id)
	if err != nil {
		return failure(c, exitBadConnection, err)
	}
	for resp := range renewals {
		if err := cc.print(c, keepAliveView(resp)); err != nil {
			return err
		}
	}
	if cc.format != formatSimple {
		return nil
	}
	return emit(c, bytes.NewBufferString(fmt.Sprintf("lease %016x expired or revoked.\n", id)))
}

func keepAliveView(resp *clientv3.LeaseKeepAliveResponse) clientView {
	return clientView{
		json:   resp,
		simple: func(w *bytes.Buffer) { fmt.Fprintf(w, "lease %016x keepalived with TTL(%d)\n", resp.ID, resp.TTL) },
	}
}
