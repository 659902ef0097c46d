package main

import (
	"cmp"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/plumbdb/plumb/server"
)

// exitServeFailed: the member could not start, or stopped on its own (its
// storage failed, or it was removed from the cluster).
const exitServeFailed = 1

func nodeCommand() *cli.Command {
	flags := make([]cli.Flag, 0, len(server.Settings))
	for _, s := range server.Settings {
		// Every setting is a string flag: server.Resolve parses and checks
		// them all alike, whichever source (flag, environment, config file)
		// a value came from, and names that source in its errors.
		if s.IsBool() {
			flags = append(flags, &cli.BoolFlag{Name: s.Name, Usage: s.Usage})
			continue
		}
		flags = append(flags, &cli.StringFlag{Name: s.Name, Usage: s.Usage, DefaultText: s.Default})
	}
	// etcd's flags that plumb lacks: accepted so that server.Resolve can
	// ignore or refuse them with a reason (hidden from the help, which
	// lists what plumb does; README lists them).
	for _, f := range server.EtcdFlags() {
		if f.Bool {
			flags = append(flags, &cli.BoolFlag{Name: f.Name, Hidden: true})
			continue
		}
		flags = append(flags, &cli.StringFlag{Name: f.Name, Hidden: true})
	}
	return &cli.Command{
		Name:  "node",
		Usage: "run a plumb member",
		Subcommands: []*cli.Command{{
			Name:      "serve",
			Usage:     "serve as a member of a cluster; takes etcd's flags (and PLUMB_* or ETCD_* environment variables)",
			UsageText: "plumb node serve --name n1 --initial-cluster n1=http://10.0.0.1:2380,... [flags]",
			Flags:     flags,
			Action:    serve,
		}},
	}
}

// serve runs a member until SIGTERM or SIGINT, or until it stops on its own.
func serve(c *cli.Context) error {
	if c.NArg() > 0 {
		return badInput(fmt.Errorf("node serve takes no arguments, got %q (flags are --name value)", c.Args().Slice()))
	}
	set := map[string]string{}
	for _, s := range server.Settings {
		switch {
		case !c.IsSet(s.Name):
		case s.IsBool():
			set[s.Name] = strconv.FormatBool(c.Bool(s.Name))
		default:
			set[s.Name] = c.String(s.Name)
		}
	}
	for _, f := range server.EtcdFlags() {
		switch {
		case !c.IsSet(f.Name):
		case f.Bool:
			set[f.Name] = strconv.FormatBool(c.Bool(f.Name))
		default:
			set[f.Name] = c.String(f.Name)
		}
	}
	cfg, warnings, err := server.Resolve(server.Sources{Flags: set, Environ: os.Environ()})
	if err != nil {
		return badInput(err)
	}
	logger, closeLog, err := server.NewLogger(server.LogOptions{Level: cfg.LogLevel, Format: cfg.LogFormat,
		Outputs: cfg.LogOutputs, Stderr: c.App.ErrWriter, Stdout: c.App.Writer})
	if err != nil {
		return badInput(err)
	}
	defer closeLog()
	for _, w := range warnings {
		logger.Warn(w)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	srv, err := server.Start(cfg, server.Options{Version: version}, logger)
	if err != nil {
		return cli.Exit(err.Error(), exitServeFailed)
	}
	select {
	case sig := <-signals:
		logger.Info("stopping on a signal", "signal", sig.String())
		if err := srv.Stop(); err != nil {
			return cli.Exit(fmt.Sprintf("stop: %v", err), exitServeFailed)
		}
		return nil
	case <-srv.Done():
		stopErr := srv.Stop()
		return cli.Exit(fmt.Sprintf("the member stopped: %v", cmp.Or(srv.Err(), stopErr)), exitServeFailed)
	}
}
