package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func memberAddCommand() *cli.Command {
	return &cli.Command{
		Name: "add",
		Usage: "add a member, a voter or with --learner a learner, and print the ETCD_* settings " +
			"that start it (exit 0: added, 1: the server failed it, 2: bad input)",
		ArgsUsage: "NAME   (the new member's --name, used only in the settings printed)",
		Flags: withClientFlags(
			&cli.StringFlag{Name: "peer-urls", Usage: "comma separated peer URLs for the new member"},
			&cli.BoolFlag{Name: "learner", Usage: "add the new member as a raft learner, a member that does not vote until promoted"},
		),
		Action: memberAdd,
	}
}

func memberAdd(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	name, err := memberNameArg(positional(c))
	if err != nil {
		return badInput(err)
	}
	if err := peerURLsGiven(c); err != nil {
		return badInput(err)
	}
	urls := peerURLsOf(c)
	var resp *clientv3.MemberAddResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		if c.Bool("learner") {
			resp, err = client.MemberAddAsLearner(ctx, urls)
		} else {
			resp, err = client.MemberAdd(ctx, urls)
		}
		return err
	})
	if err != nil {
		return serverError(c, err)
	}
	added := (*pb.MemberAddResponse)(resp)
	var view any = added
	if cc.hex {
		view = hexMemberAddedOf(added)
	}
	return cc.print(c, clientView{
		json:   view,
		simple: func(w *bytes.Buffer) { writeMemberAdded(w, name, c.String("peer-urls"), added) },
	})
}

// memberNameArg is member add's one argument, checked as etcdctl checks
// it: a peer URL given as a second argument is pointed at --peer-urls.
func memberNameArg(args []string) (string, error) {
	switch {
	case len(args) < 1:
		return "", errors.New("member name not provided")
	case len(args) > 1:
		msg := "too many arguments"
		for _, a := range args {
			if strings.HasPrefix(strings.ToLower(a), "http") {
				msg += fmt.Sprintf(", did you mean --peer-urls=%s", a)
			}
		}
		return "", errors.New(msg)
	}
	return args[0], nil
}

// writeMemberAdded is etcdctl's answer to member add: the new member's ID,
// then the settings that start it, as an environment file spells them.
// ETCD_INITIAL_CLUSTER lists every peer URL of every member in the
// response's order (the server's, by ID), the new member under name and a
// member that has not started (no name yet) under an empty name, as
// etcdctl does. peerURLs is --peer-urls as given.
func writeMemberAdded(w *bytes.Buffer, name, peerURLs string, resp *pb.MemberAddResponse) {
	as := " "
	if resp.GetMember().GetIsLearner() {
		as = " as learner "
	}
	// %16x pads with spaces, not zeros: etcdctl's format, kept byte for byte.
	fmt.Fprintf(w, "Member %16x added%sto cluster %16x\n", resp.GetMember().GetID(), as, resp.GetHeader().GetClusterId())
	var initial []string
	for _, m := range resp.GetMembers() {
		n := m.GetName()
		if m.GetID() == resp.GetMember().GetID() {
			n = name
		}
		for _, u := range m.GetPeerURLs() {
			initial = append(initial, n+"="+u)
		}
	}
	fmt.Fprintf(w, "\nETCD_NAME=%q\n", name)
	fmt.Fprintf(w, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(initial, ","))
	fmt.Fprintf(w, "ETCD_INITIAL_ADVERTISE_PEER_URLS=%q\n", peerURLs)
	fmt.Fprintf(w, "ETCD_INITIAL_CLUSTER_STATE=%q\n", "existing")
}

// hexMemberAdded is a member add response under --hex: the new member
// beside the member list.
type hexMemberAdded struct {
	Header  *hexHeader   `json:"header"`
	Member  *hexMember   `json:"member"`
	Members []*hexMember `json:"members"`
}

func hexMemberAddedOf(resp *pb.MemberAddResponse) hexMemberAdded {
	all := hexMembersOf(resp.GetHeader(), resp.GetMembers())
	out := hexMemberAdded{Header: all.Header, Members: all.Members}
	if resp.GetMember() != nil {
		out.Member = hexMembersOf(nil, []*pb.Member{resp.GetMember()}).Members[0]
	}
	return out
}
