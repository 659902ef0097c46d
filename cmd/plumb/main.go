package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// Exit codes, for every command.
const (
	exitOK       = 0 // every expectation held
	exitViolated = 1 // a check failed, or a run could not be judged
	exitBadInput = 2 // bad flags or a bad scenario file
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) }

// run is the whole command: it returns the exit code instead of exiting, so
// tests can call it.
func run(args []string, stdout, stderr io.Writer) int {
	args, print, refuse := byName(args)
	switch {
	case refuse != nil:
		fmt.Fprintln(stderr, "plumb:", refuse)
		return exitBadInput
	case print != "":
		fmt.Fprint(stdout, print)
		return exitOK
	}
	app := &cli.App{
		Name:      "plumb",
		Usage:     "an etcd-compatible key-value store, and a deterministic simulator that proves it",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			simCommand(),
			kvCommand(), leaseCommand(), lockCommand(), electCommand(), memberCommand(), endpointCommand(),
			nodeCommand(), snapshotCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run reports below
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return badInput(err)
		},
	}
	err := app.Run(interspersed(args, app.Commands))
	if err == nil {
		return exitOK
	}
	var coded cli.ExitCoder
	if errors.As(err, &coded) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "plumb:", msg)
		}
		return coded.ExitCode()
	}
	fmt.Fprintln(stderr, "plumb:", err)
	return exitBadInput
}

func badInput(err error) error { return cli.Exit(err.Error(), exitBadInput) }
