package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func endpointCommand() *cli.Command {
	return &cli.Command{
		Name:        "endpoint",
		Usage:       "check the health and status of endpoints, as etcdctl endpoint",
		Subcommands: []*cli.Command{endpointHealthCommand(), endpointStatusCommand()},
	}
}

// clusterFlag is etcdctl's endpoint --cluster, on each leaf command so that
// it may follow the command's name.
func clusterFlag() cli.Flag {
	return &cli.BoolFlag{Name: "cluster", Usage: "use all endpoints from the cluster member list"}
}

func endpointHealthCommand() *cli.Command {
	return &cli.Command{
		Name:   "health",
		Usage:  "check that each endpoint commits a read through consensus (exit 0: all healthy, 1: one is not, 2: bad input)",
		Flags:  withClientFlags(clusterFlag()),
		Action: endpointHealth,
	}
}

// healthAnswer is one endpoint's answer, with etcdctl's JSON field names.
type healthAnswer struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

func endpointHealth(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON, formatTable)
	if err != nil {
		return badInput(err)
	}
	endpoints, err := endpointsOf(c, cc)
	if err != nil {
		return err
	}
	// Endpoints are checked at once, as etcdctl does, so that one down
	// member costs one timeout; results keep the endpoints' order.
	checks := make([]healthAnswer, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() { checks[i] = checkHealth(c.Context, cc, ep) })
	}
	wg.Wait()
	unhealthy := false
	for _, h := range checks {
		unhealthy = unhealthy || h.Error != ""
	}
	table := func() ([]string, [][]string) { return healthTable(checks) }
	err = cc.print(c, clientView{
		json:  checks,
		table: table,
		simple: func(w *bytes.Buffer) {
			for _, h := range checks {
				if h.Error == "" {
					fmt.Fprintf(w, "%s is healthy: successfully committed proposal: took = %s\n", h.Endpoint, h.Took)
				} else {
					fmt.Fprintf(c.App.ErrWriter, "%s is unhealthy: failed to commit proposal: %s\n", h.Endpoint, h.Error)
				}
			}
		},
	})
	if err == nil && unhealthy {
		return serverError(c, errors.New("unhealthy cluster"))
	}
	return err
}

// checkHealth is etcdctl's check: a linearizable read goes through
// consensus (permission denied still does), and an active alarm makes a
// member unhealthy however well it reads.
func checkHealth(parent context.Context, cc clientConfig, ep string) healthAnswer {
	client, err := cc.dial([]string{ep})
	if err != nil {
		return healthAnswer{Endpoint: ep, Error: err.Error()}
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(parent, cc.commandTimeout)
	defer cancel()
	start := time.Now()
	_, err = client.Get(ctx, "health")
	h := healthAnswer{Endpoint: ep, Took: time.Since(start).String()}
	if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Error = err.Error()
		return h
	}
	alarms, err := client.AlarmList(ctx)
	switch {
	case err != nil:
		h.Error = "Unable to fetch the alarm list"
	case len(alarms.Alarms) > 0:
		names := map[pb.AlarmType]string{pb.AlarmType_NOSPACE: "NOSPACE", pb.AlarmType_CORRUPT: "CORRUPT"}
		h.Error = "Active Alarm(s): "
		for _, a := range alarms.Alarms {
			name, ok := names[a.Alarm]
			if !ok {
				name = "UNKNOWN"
			}
			h.Error += name + " "
		}
	default:
		h.Health = true
	}
	return h
}

func healthTable(checks []healthAnswer) (header []string, rows [][]string) {
	header = []string{"endpoint", "health", "took", "error"}
	for _, h := range checks {
		rows = append(rows, []string{h.Endpoint, strconv.FormatBool(h.Health), h.Took, h.Error})
	}
	return header, rows
}

func endpointStatusCommand() *cli.Command {
	return &cli.Command{
		Name: "status",
		Usage: "print each endpoint's status: endpoint, ID, version, storage version, db size, in use, percentage not in use, " +
			"quota, is leader, is learner, raft term, raft index, raft applied index, errors, downgrade target version, " +
			"downgrade enabled (exit 0: all answered, 1: one did not, 2: bad input)",
		Flags:  withClientFlags(clusterFlag()),
		Action: endpointStatus,
	}
}

// statusAnswer is one endpoint's answer, with etcdctl's JSON field names.
type statusAnswer struct {
	Endpoint string             `json:"Endpoint"`
	Status   *pb.StatusResponse `json:"Status"`
}

func endpointStatus(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON, formatTable)
	if err != nil {
		return badInput(err)
	}
	endpoints, err := endpointsOf(c, cc)
	if err != nil {
		return err
	}
	var answers []statusAnswer
	failed := false
	for _, ep := range endpoints {
		var resp *clientv3.StatusResponse
		err := cc.withEndpoint(ep).call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
			resp, err = client.Status(ctx, ep)
			return err
		})
		if err != nil {
			failed = true
			fmt.Fprintf(c.App.ErrWriter, "Failed to get the status of endpoint %s (%v)\n", ep, err)
			continue
		}
		answers = append(answers, statusAnswer{Endpoint: ep, Status: (*pb.StatusResponse)(resp)})
	}
	table := func() ([]string, [][]string) { return statusTable(answers) }
	err = cc.print(c, clientView{json: answers, table: table, simple: func(w *bytes.Buffer) { writeRows(w, table) }})
	if err == nil && failed {
		// etcdctl exits 1 here with no Error line: each failure is reported above.
		return cli.Exit("", exitServerError)
	}
	return err
}

func statusTable(answers []statusAnswer) (header []string, rows [][]string) {
	header = []string{
		"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota",
		"is leader", "is learner", "raft term", "raft index", "raft applied index", "errors",
		"downgrade target version", "downgrade enabled",
	}
	for _, a := range answers {
		s := a.Status
		rows = append(rows, []string{
			a.Endpoint, fmt.Sprintf("%x", s.GetHeader().GetMemberId()), s.GetVersion(), s.GetStorageVersion(),
			bytesSI(uint64(s.GetDbSize())), bytesSI(uint64(s.GetDbSizeInUse())), notInUse(s), bytesSI(uint64(s.GetDbSizeQuota())),
			strconv.FormatBool(s.GetLeader() == s.GetHeader().GetMemberId()), strconv.FormatBool(s.GetIsLearner()),
			fmt.Sprint(s.GetRaftTerm()), fmt.Sprint(s.GetRaftIndex()), fmt.Sprint(s.GetRaftAppliedIndex()),
			strings.Join(s.GetErrors(), ", "),
			s.GetDowngradeInfo().GetTargetVersion(), strconv.FormatBool(s.GetDowngradeInfo().GetEnabled()),
		})
	}
	return header, rows
}

// notInUse is the share of the database file that is free, rounded down as
// etcdctl's integer arithmetic does. A server that reports no size gets 0%
// where etcdctl would divide by zero.
func notInUse(s *pb.StatusResponse) string {
	if s.GetDbSize() <= 0 {
		return "0%"
	}
	return fmt.Sprintf("%d%%", 100-s.GetDbSizeInUse()*100/s.GetDbSize())
}

// withEndpoint is cc with one endpoint, for commands that ask each one.
func (cc clientConfig) withEndpoint(ep string) clientConfig {
	cc.endpoints = []string{ep}
	return cc
}

// endpointsOf is --endpoints, or under --cluster every member's client URLs
// from a member list asked of --endpoints.
func endpointsOf(c *cli.Context, cc clientConfig) ([]string, error) {
	if !c.Bool("cluster") {
		return cc.endpoints, nil
	}
	var resp *clientv3.MemberListResponse
	err := cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.MemberList(ctx)
		return err
	})
	if err != nil {
		return nil, serverError(c, fmt.Errorf("failed to fetch endpoints from etcd cluster member list: %w", err))
	}
	var endpoints []string
	for _, m := range resp.Members {
		endpoints = append(endpoints, m.ClientURLs...)
	}
	if len(endpoints) == 0 {
		return nil, serverError(c, errors.New("no member of the cluster has a client URL yet"))
	}
	return endpoints, nil
}
