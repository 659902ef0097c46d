// Command plumb is an etcd-compatible replicated key-value store whose one
// node implementation also runs inside a deterministic simulator. main only
// wires commands to the packages that do the work, and prints.
package main

import (
	"errors"
	"fmt"
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

func main() {
	app := &cli.App{
		Name:    "plumb",
		Usage:   "an etcd-compatible key-value store, and a deterministic simulator that proves it",
		Version: version,
		Commands: []*cli.Command{
			simCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits below
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return badInput(err)
		},
	}
	if err := app.Run(interspersed(os.Args, app.Commands)); err != nil {
		var coded cli.ExitCoder
		if errors.As(err, &coded) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "plumb:", msg)
			}
			os.Exit(coded.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "plumb:", err)
		os.Exit(exitBadInput)
	}
}

func badInput(err error) error { return cli.Exit(err.Error(), exitBadInput) }
