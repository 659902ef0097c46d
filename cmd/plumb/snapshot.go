package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/plumbdb/plumb/server"
)

// exitRestoreFailed: the snapshot file was refused (a checksum error, a
// file that is not a database) or the data dir could not be built.
const exitRestoreFailed = 1

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "restore a backup taken with etcdctl snapshot save, as etcdutl snapshot",
		Subcommands: []*cli.Command{{
			Name:      "restore",
			Usage:     "build the data dir of a member of a new cluster from a snapshot file (exit 0: restored, 1: refused, 2: bad input)",
			UsageText: "plumb snapshot restore FILE --data-dir D --name N --initial-cluster N=URL,... --initial-cluster-token T --initial-advertise-peer-urls URL",
			// etcdutl's flags and defaults.
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "data-dir", Usage: "the data dir to create (default: NAME.etcd); it must not exist, or be empty"},
				&cli.StringFlag{Name: "name", Value: "default", Usage: "the member this data dir is for"},
				&cli.StringFlag{Name: "initial-cluster", Value: "default=http://localhost:2380", Usage: "the new cluster's members, as node serve takes it"},
				&cli.StringFlag{Name: "initial-cluster-token", Value: "etcd-cluster", Usage: "the new cluster's token"},
				&cli.StringFlag{Name: "initial-advertise-peer-urls", Value: "http://localhost:2380", Usage: "this member's peer URLs, as in --initial-cluster"},
				&cli.BoolFlag{Name: "skip-hash-check", Usage: "restore a file without the sha256 etcdctl snapshot save appends (a db copied from a data dir)"},
			},
			Action: snapshotRestore,
		}},
	}
}

func snapshotRestore(c *cli.Context) error {
	if c.NArg() != 1 {
		return badInput(fmt.Errorf("snapshot restore takes one argument, the snapshot file; got %d", c.NArg()))
	}
	ic, err := server.ParseInitialCluster(c.String("initial-cluster"))
	if err != nil {
		return badInput(fmt.Errorf("--initial-cluster: %w", err))
	}
	var peers []string
	for _, u := range strings.Split(c.String("initial-advertise-peer-urls"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			peers = append(peers, u)
		}
	}
	logger, _, err := server.NewLogger(server.LogOptions{Stderr: c.App.ErrWriter}) // stderr: nothing to close
	if err != nil {
		return badInput(err)
	}
	err = server.Restore(server.RestoreConfig{
		SnapshotPath:             c.Args().First(),
		DataDir:                  c.String("data-dir"),
		Name:                     c.String("name"),
		InitialCluster:           ic,
		InitialClusterToken:      c.String("initial-cluster-token"),
		InitialAdvertisePeerURLs: peers,
		SkipHashCheck:            c.Bool("skip-hash-check"),
	}, logger)
	if err != nil {
		return cli.Exit(err.Error(), exitRestoreFailed)
	}
	return nil
}
