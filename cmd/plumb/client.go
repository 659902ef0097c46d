package main

// The client commands (kv, lease, lock, elect, member, endpoint) talk to
// any etcd v3 API server, plumb's or etcd's, through etcd's own Go client.
// They take etcdctl 3.7's flags, environment variables, output and exit
// codes where the two overlap, so a user without etcdctl types the same
// things and a script reads the same bytes. Two things differ on purpose:
// bad flags or arguments exit with exitBadInput (etcdctl uses 128 or 4),
// and they are refused before anything is sent, so a refused command never
// half-happened. What else differs is said where it does.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// exitServerError is etcdctl's ExitError: the server answered with an
// error, or could not be reached in time.
const exitServerError = 1

// etcdctl's other failure codes, used where its commands use them, so that
// a script written for etcdctl reads the same status (cobrautl's names).
const (
	// exitBadConnection: lease timetolive, list and keep-alive failed. It is
	// the number of exitBadInput, as it is in etcdctl (ExitBadConnection).
	exitBadConnection = 2
	exitInvalidInput  = 3 // watch -i: stdin ended, failed, or held an unreadable line
	exitInterrupted   = 5 // watch: the server canceled the watch
)

// The --write-out formats. etcdctl's fields and protobuf are not offered.
const (
	formatSimple = "simple"
	formatJSON   = "json"
	formatTable  = "table"
)

// clientFlags are etcdctl's global flags, with its defaults and environment
// variables. They are declared on every leaf command rather than on a parent,
// because interspersed moves only a leaf's flags ahead of its arguments.
func clientFlags() []cli.Flag {
	const category = "client"
	env := func(name string) []string { return []string{"ETCDCTL_" + name} }
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "endpoints", Value: cli.NewStringSlice("127.0.0.1:2379"), EnvVars: env("ENDPOINTS"),
			Category: category, Usage: "gRPC endpoints, comma-separated, as host:port or http://host:port"},
		&cli.DurationFlag{Name: "dial-timeout", Value: 2 * time.Second, EnvVars: env("DIAL_TIMEOUT"),
			Category: category, Usage: "dial timeout for client connections"},
		&cli.DurationFlag{Name: "command-timeout", Value: 5 * time.Second, EnvVars: env("COMMAND_TIMEOUT"),
			Category: category, Usage: "timeout for the command's requests, excluding the dial timeout"},
		&cli.DurationFlag{Name: "keepalive-time", Value: 2 * time.Second, EnvVars: env("KEEPALIVE_TIME"),
			Category: category, Usage: "keepalive time for client connections"},
		&cli.DurationFlag{Name: "keepalive-timeout", Value: 6 * time.Second, EnvVars: env("KEEPALIVE_TIMEOUT"),
			Category: category, Usage: "keepalive timeout for client connections"},
		&cli.StringFlag{Name: "write-out", Aliases: []string{"w"}, Value: formatSimple, EnvVars: env("WRITE_OUT"),
			Category: category, Usage: "output format: simple, json, or table where the command has one"},
		&cli.BoolFlag{Name: "hex", EnvVars: env("HEX"),
			Category: category, Usage: "print byte strings as hex encoded strings"},
	}
}

// withClientFlags appends the global flags to a command's own.
func withClientFlags(own ...cli.Flag) []cli.Flag { return append(own, clientFlags()...) }

// clientConfig is what the global flags say, checked.
type clientConfig struct {
	endpoints        []string
	dialTimeout      time.Duration
	commandTimeout   time.Duration
	keepAliveTime    time.Duration
	keepAliveTimeout time.Duration
	format           string
	hex              bool
}

// clientConfigOf reads the global flags of c; formats are the --write-out
// values the command can print, so an unprintable format is refused before
// the request is sent (etcdctl sends it, then fails).
func clientConfigOf(c *cli.Context, formats ...string) (clientConfig, error) {
	cc := clientConfig{
		dialTimeout: c.Duration("dial-timeout"), commandTimeout: c.Duration("command-timeout"),
		keepAliveTime: c.Duration("keepalive-time"), keepAliveTimeout: c.Duration("keepalive-timeout"),
		format: c.String("write-out"), hex: c.Bool("hex"),
	}
	for _, ep := range c.StringSlice("endpoints") {
		if ep = strings.TrimSpace(ep); ep == "" {
			continue
		}
		if err := checkEndpoint(ep); err != nil {
			return cc, err
		}
		cc.endpoints = append(cc.endpoints, ep)
	}
	switch {
	case len(cc.endpoints) == 0:
		return cc, errors.New("--endpoints: name at least one endpoint")
	case !slices.Contains(formats, cc.format):
		return cc, fmt.Errorf("--write-out: %q is not an output format of %s (use %s)", cc.format, c.Command.HelpName, strings.Join(formats, ", "))
	case cc.commandTimeout <= 0:
		return cc, fmt.Errorf("--command-timeout must be positive, not %v", cc.commandTimeout)
	case cc.dialTimeout < 0:
		return cc, fmt.Errorf("--dial-timeout must not be negative, not %v", cc.dialTimeout)
	}
	return cc, nil
}

// checkEndpoint accepts what etcd's client dials without TLS: host:port,
// http://host:port and unix sockets. A typo is caught here instead of
// surfacing as a timeout five seconds later.
func checkEndpoint(ep string) error {
	if strings.HasPrefix(ep, "unix:") {
		return nil
	}
	host := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		switch {
		case err != nil:
			return fmt.Errorf("--endpoints: %w", err)
		case u.Scheme == "https":
			return fmt.Errorf("--endpoints: %q: TLS is not supported by plumb's client yet; use http:// or etcdctl", ep)
		case u.Scheme != "http":
			return fmt.Errorf("--endpoints: %q: scheme %q is not http", ep, u.Scheme)
		}
		host = u.Host
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		return fmt.Errorf("--endpoints: %q is not host:port or http://host:port", ep)
	}
	return nil
}

// dial connects to endpoints. etcd's client logs every retry; its logger is
// silenced so that stderr carries only what the command says.
func (cc clientConfig) dial(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          cc.dialTimeout,
		DialKeepAliveTime:    cc.keepAliveTime,
		DialKeepAliveTimeout: cc.keepAliveTimeout,
		Logger:               zap.NewNop(),
	})
}

// call dials every endpoint and runs one request under --command-timeout,
// the way etcdctl's commands do.
func (cc clientConfig) call(c *cli.Context, request func(context.Context, *clientv3.Client) error) error {
	client, err := cc.dial(cc.endpoints)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(c.Context, cc.commandTimeout)
	defer cancel()
	return request(ctx, client)
}

// clientView is one response in each output format a command offers. A command
// leaves nil the formats it does not offer, and clientConfigOf has already
// refused them.
type clientView struct {
	simple func(*bytes.Buffer)
	json   any
	table  func() (header []string, rows [][]string)
}

// print writes v in the chosen format to stdout in one write.
func (cc clientConfig) print(c *cli.Context, v clientView) error {
	var out bytes.Buffer
	var err error
	switch cc.format {
	case formatJSON:
		err = writeJSON(&out, v.json)
	case formatTable:
		err = writeTable(&out, v.table)
	default:
		v.simple(&out)
	}
	if err != nil {
		return serverError(c, err)
	}
	return emit(c, &out)
}

// emit writes out to stdout; a failed write (a closed pipe) is the last
// thing the command can report.
func emit(c *cli.Context, out *bytes.Buffer) error {
	if _, err := c.App.Writer.Write(out.Bytes()); err != nil {
		return cli.Exit(fmt.Sprintf("writing the output: %v", err), exitServerError)
	}
	return nil
}

// serverError reports err as etcdctl does, "Error: " and the message on
// stderr, and exits 1; run prints nothing more for an empty exit message.
func serverError(c *cli.Context, err error) error { return failure(c, exitServerError, err) }

// failure reports err as serverError does, with etcdctl's code for it.
func failure(c *cli.Context, code int, err error) error {
	fmt.Fprintln(c.App.ErrWriter, "Error:", err)
	return cli.Exit("", code)
}

// positional returns the command's arguments. urfave/cli stops parsing
// flags at the first argument and then keeps a later "--" as an argument;
// etcdctl (cobra) drops it, as in `put KEY -- -VALUE`, so it is dropped here.
// A "--" that comes first is a key: flag parsing has already eaten the one
// before it.
func positional(c *cli.Context) []string {
	args := c.Args().Slice()
	if len(args) < 2 {
		return args
	}
	if i := slices.Index(args[1:], "--"); i >= 0 {
		args = slices.Delete(slices.Clone(args), i+1, i+2)
	}
	return args
}
