package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func memberCommand() *cli.Command {
	return &cli.Command{
		Name:        "member",
		Usage:       "list, add, remove, promote and update the cluster's members, as etcdctl member",
		Subcommands: []*cli.Command{memberListCommand(), memberAddCommand(), memberRemoveCommand(), memberPromoteCommand(), memberUpdateCommand()},
	}
}

func memberListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the members: ID, status, name, peer URLs, client URLs, is learner (exit 0: listed, 1: the server failed it, 2: bad input)",
		Flags: withClientFlags(
			&cli.StringFlag{Name: "consistency", Value: "l", Usage: "Linearizable(l) or Serializable(s)"},
		),
		Action: memberList,
	}
}

func memberList(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON, formatTable)
	if err != nil {
		return badInput(err)
	}
	if c.NArg() > 0 {
		return badInput(fmt.Errorf("member list takes no arguments, not %q", c.Args().First()))
	}
	var opts []clientv3.OpOption
	switch c.String("consistency") {
	case "l":
	case "s":
		opts = append(opts, clientv3.WithSerializable())
	default:
		return badInput(fmt.Errorf("unknown consistency flag %q", c.String("consistency")))
	}
	var resp *clientv3.MemberListResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.MemberList(ctx, opts...)
		return err
	})
	if err != nil {
		return serverError(c, err)
	}
	table := func() ([]string, [][]string) { return memberTable(resp.Members) }
	return cc.print(c, clientView{
		json:   memberJSON(cc, resp.Header, resp.Members, (*pb.MemberListResponse)(resp)),
		simple: func(w *bytes.Buffer) { writeRows(w, table) },
		table:  table,
	})
}

// memberTable is etcdctl's member table. A member that has not started yet
// has no name, and is shown as unstarted.
func memberTable(members []*pb.Member) (header []string, rows [][]string) {
	header = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}
	for _, m := range members {
		status := "started"
		if m.Name == "" {
			status = "unstarted"
		}
		rows = append(rows, []string{
			fmt.Sprintf("%x", m.ID), status, m.Name,
			strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","),
			strconv.FormatBool(m.IsLearner),
		})
	}
	return header, rows
}

// memberJSON is the response as JSON, with hex IDs under --hex.
func memberJSON(cc clientConfig, h *pb.ResponseHeader, members []*pb.Member, resp any) any {
	if cc.hex {
		return hexMembersOf(h, members)
	}
	return resp
}

// memberIDUsage is the argument of the commands that name a member.
const memberIDUsage = "MEMBER_ID   (in hexadecimal, as member list prints it)"

func memberUpdateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "update a member's peer URLs (exit 0: updated, 1: the server failed it, 2: bad input)",
		ArgsUsage: memberIDUsage,
		Flags: withClientFlags(
			&cli.StringFlag{Name: "peer-urls", Usage: "comma separated peer URLs for the updated member"},
		),
		Action: memberUpdate,
	}
}

func memberUpdate(c *cli.Context) error {
	return changeMember(c, "updated in", peerURLsGiven, func(ctx context.Context, client *clientv3.Client, id uint64) (memberResponse, error) {
		resp, err := client.MemberUpdate(ctx, id, peerURLsOf(c))
		return (*pb.MemberUpdateResponse)(resp), err
	})
}

func memberRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "remove a member from the cluster (exit 0: removed, 1: the server failed it, 2: bad input)",
		ArgsUsage: memberIDUsage,
		Flags:     withClientFlags(),
		Action:    memberRemove,
	}
}

func memberRemove(c *cli.Context) error {
	return changeMember(c, "removed from", nil, func(ctx context.Context, client *clientv3.Client, id uint64) (memberResponse, error) {
		resp, err := client.MemberRemove(ctx, id)
		return (*pb.MemberRemoveResponse)(resp), err
	})
}

func memberPromoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "promote a learner to a voting member, once it has caught up with the leader (exit 0: promoted, 1: the server failed it, 2: bad input)",
		ArgsUsage: memberIDUsage,
		Flags:     withClientFlags(),
		Action:    memberPromote,
	}
}

func memberPromote(c *cli.Context) error {
	return changeMember(c, "promoted in", nil, func(ctx context.Context, client *clientv3.Client, id uint64) (memberResponse, error) {
		resp, err := client.MemberPromote(ctx, id)
		return (*pb.MemberPromoteResponse)(resp), err
	})
}

// memberResponse is what update, remove and promote are answered: each
// response carries the header and the member list.
type memberResponse interface {
	GetHeader() *pb.ResponseHeader
	GetMembers() []*pb.Member
}

// changeMember runs update, remove or promote: it reads the one argument,
// a member ID, then checks the command's own flags with check (nil for
// none; etcdctl checks them in that order, so the same bad input gets the
// same error), sends the request with send and prints the answer: the
// response as JSON, or etcdctl's line naming the member by the ID it was
// given (done is "updated in", "removed from" or "promoted in").
func changeMember(c *cli.Context, done string, check func(*cli.Context) error,
	send func(ctx context.Context, client *clientv3.Client, id uint64) (memberResponse, error),
) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	id, err := memberIDArg(c)
	if err != nil {
		return badInput(err)
	}
	if check != nil {
		if err := check(c); err != nil {
			return badInput(err)
		}
	}
	var resp memberResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = send(ctx, client, id)
		return err
	})
	if err != nil {
		return serverError(c, err)
	}
	return cc.print(c, clientView{
		json:   memberJSON(cc, resp.GetHeader(), resp.GetMembers(), resp),
		simple: func(w *bytes.Buffer) { writeMemberChanged(w, id, done, resp.GetHeader().GetClusterId()) },
	})
}

// peerURLsGiven checks --peer-urls of add and update, with etcdctl's words.
func peerURLsGiven(c *cli.Context) error {
	if c.String("peer-urls") == "" {
		return errors.New("member peer urls not provided")
	}
	return nil
}

// peerURLsOf is --peer-urls of add and update, once peerURLsGiven has
// checked it, as a list.
func peerURLsOf(c *cli.Context) []string { return strings.Split(c.String("peer-urls"), ",") }

// memberIDArg is the one argument of update, remove and promote: a member
// ID in hexadecimal, checked with etcdctl's words.
func memberIDArg(c *cli.Context) (uint64, error) {
	args := positional(c)
	if len(args) != 1 {
		return 0, errors.New("member ID is not provided")
	}
	id, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return 0, fmt.Errorf("bad member ID arg (%w), expecting ID in Hex", err)
	}
	return id, nil
}

// writeMemberChanged is etcdctl's line for update, remove and promote.
func writeMemberChanged(w *bytes.Buffer, id uint64, done string, clusterID uint64) {
	// %16x pads with spaces, not zeros: etcdctl's format, kept byte for byte.
	fmt.Fprintf(w, "Member %16x %s cluster %16x\n", id, done, clusterID)
}
