package main

// kv watch is etcdctl's watch: it prints each event on a key or a range
// as it happens, from now or from --rev, and runs a command for each event
// when one follows "--". It ends only when the server cancels the watch
// (exit 5), when a command fails (exit 1), or when a signal kills it. With
// -i it reads `watch [options] KEY [RANGE_END] [-- CMD ARGS...]` and
// `progress` lines from stdin, each watch printing from its own goroutine,
// until stdin ends (exit 3, as etcdctl: its interactive mode has no other
// way out).
//
// Where plumb refuses what etcdctl takes silently: more than KEY and
// RANGE_END (etcdctl ignores the rest); arguments or watch flags beside -i
// (etcdctl ignores them, and each line's own flags decide); and, on an
// interactive line, a key beside ETCDCTL_WATCH_KEY even before "--"
// (etcdctl takes the line's key as the range end there).

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"github.com/urfave/cli/v2"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchLineMaxBytes bounds a line of interactive mode.
const watchLineMaxBytes = 64 << 10

// etcdctl's messages for a watch's arguments.
var (
	errWatchArgs        = errors.New("bad number of arguments")
	errWatchEnvConflict = errors.New("bad number of arguments (found conflicting environment key)")
	errWatchNoCommand   = errors.New("bad number of arguments (found separator --, but no commands)")
	errWatchPrefixRange = errors.New("`range_end` and `--prefix` are mutually exclusive")
)

func kvWatchCommand() *cli.Command {
	return &cli.Command{
		Name: "watch",
		Usage: "print the events on a key or a range [KEY, RANGE_END) as they happen, or run a command for each with " +
			"ETCD_WATCH_REVISION, ETCD_WATCH_EVENT_TYPE, ETCD_WATCH_KEY and ETCD_WATCH_VALUE in its environment; " +
			"-i reads `watch ...` and `progress` lines from stdin " +
			"(runs until the server cancels the watch, exit 5; 1: a command failed, 2: bad input, 3: -i's stdin ended)",
		ArgsUsage: "KEY [RANGE_END] [-- CMD ARGS...]   (KEY and RANGE_END may come from ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END)",
		Flags:     withClientFlags(watchFlags()...),
		// kvWatch parses the flags: urfave/cli would take away a "--" that
		// comes before any argument, and `watch -- CMD` (the key from
		// ETCDCTL_WATCH_KEY) has to tell the command from a key.
		SkipFlagParsing: true,
		HideHelpCommand: true, // it has no subcommands to list
		Action:          kvWatch,
	}
}

// watchFlags are the flags of a watch, on the command line and on each
// line of interactive mode.
func watchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "interactive mode: read watch and progress lines from stdin"},
		&cli.BoolFlag{Name: "prefix", Usage: "watch on a prefix"},
		&cli.Int64Flag{Name: "rev", Usage: "revision to start watching from (0: the next one)"},
		&cli.BoolFlag{Name: "prev-kv", Usage: "print the previous key-value pair before each event's"},
		&cli.BoolFlag{Name: "progress-notify", Usage: "print the server's periodic progress notifications"},
	}
}

// watchNames are the flags a watch line may set in interactive mode.
var watchNames = []string{"prefix", "rev", "prev-kv", "progress-notify"}

// watchRequest is one watch: its key or range, its options and the command
// to run for each event.
type watchRequest struct {
	key     string
	opts    []clientv3.OpOption
	command []string
}

func kvWatch(unparsed *cli.Context) error {
	c, args, err := parseWatchFlags(unparsed)
	if err != nil {
		return badInput(err)
	}
	if c.Bool("help") {
		// The help of a command is shown from its parent's context.
		return cli.ShowCommandHelp(unparsed.Lineage()[1], c.Command.Name)
	}
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	envKey, envRange := os.Getenv("ETCDCTL_WATCH_KEY"), os.Getenv("ETCDCTL_WATCH_RANGE_END")
	if envKey == "" && envRange != "" {
		return badInput(fmt.Errorf("ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=%q", envRange))
	}
	if c.Bool("interactive") {
		for _, name := range watchNames {
			if c.IsSet(name) {
				return badInput(fmt.Errorf("--%s goes on each watch line of interactive mode, not beside -i", name))
			}
		}
		if len(args) > 0 {
			return badInput(fmt.Errorf("watch -i reads its watches from stdin and takes no arguments, not %q", args[0]))
		}
		return watchInteractive(c, cc, envKey, envRange)
	}
	keys, command, err := watchArgs(args, envKey, envRange, false)
	if err == nil {
		err = checkWatchRange(keys, c.Bool("prefix"))
	}
	if err != nil {
		return badInput(err)
	}
	client, err := cc.dial(cc.endpoints)
	if err != nil {
		return serverError(c, err)
	}
	defer client.Close()
	p := &watchPrinter{cc: cc, stdout: c.App.Writer, stderr: c.App.ErrWriter}
	req := watchRequest{key: keys[0], opts: watchOptions(c, keys), command: command}
	if err := p.follow(c.Context, client, req); err != nil {
		return err
	}
	if err := client.Close(); err != nil {
		return failure(c, exitBadConnection, err)
	}
	return failure(c, exitInterrupted, errors.New("watch is canceled by the server"))
}

// parseWatchFlags parses the command line urfave/cli left alone
// (SkipFlagParsing) with the command's own flags, into a context that
// reads them as any other command's. The arguments it returns begin with
// the "--" that ended the flags, if one did.
func parseWatchFlags(c *cli.Context) (*cli.Context, []string, error) {
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return nil, nil, err
		}
	}
	raw := c.Args().Slice()
	if err := set.Parse(raw); err != nil {
		return nil, nil, err
	}
	if err := sameAliases(set, c.Command.Flags); err != nil {
		return nil, nil, err
	}
	args := set.Args()
	// The one way flag parsing drops an argument is a "--" that ends the
	// flags (a flag's value "--" would be a bad endpoint or format).
	if stop := len(raw) - len(args); stop > 0 && raw[stop-1] == "--" {
		args = append([]string{"--"}, args...)
	}
	parsed := cli.NewContext(c.App, set, c)
	parsed.Command = c.Command
	return parsed, args, nil
}

// sameAliases gives each flag's aliases the value its parsed name got, as
// urfave/cli does after it parses: Apply gives each name its own value.
func sameAliases(set *flag.FlagSet, flags []cli.Flag) error {
	parsed := map[string]bool{}
	set.Visit(func(f *flag.Flag) { parsed[f.Name] = true })
	for _, f := range flags {
		names := f.Names()
		for _, name := range names {
			if !parsed[name] {
				continue
			}
			for _, alias := range names {
				if alias == name {
					continue
				}
				if err := set.Set(alias, set.Lookup(name).Value.String()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// watchArgs splits a watch's arguments into the key and range end and the
// command after "--", with etcdctl's checks. The key and range end come
// from ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END when the key is set.
// A line of interactive mode may name neither, if it has a command: that
// is checked later (checkWatchRange), as etcdctl does.
func watchArgs(args []string, envKey, envRange string, interactive bool) (keys, command []string, err error) {
	keys = args
	sep := slices.Index(args, "--")
	if sep >= 0 {
		keys, command = args[:sep], args[sep+1:]
	}
	switch {
	case sep >= 0 && len(command) == 0:
		return nil, nil, errWatchNoCommand
	case envKey != "" && len(keys) > 0:
		return nil, nil, errWatchEnvConflict
	case envKey != "":
		keys = []string{envKey}
		if envRange != "" {
			keys = append(keys, envRange)
		}
	case len(keys) == 0 && (!interactive || sep < 0):
		return nil, nil, errWatchArgs
	}
	return keys, command, nil
}

// checkWatchRange checks the key and range end of a watch.
func checkWatchRange(keys []string, prefix bool) error {
	switch {
	case len(keys) == 0:
		return errWatchArgs
	case len(keys) > 2:
		return fmt.Errorf("%w: watch takes KEY [RANGE_END], not %d arguments", errWatchArgs, len(keys))
	case len(keys) == 2 && prefix:
		return errWatchPrefixRange
	}
	return nil
}

// watchOptions are the options of a watch on keys, from c's watch flags.
func watchOptions(c *cli.Context, keys []string) []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithRev(c.Int64("rev"))}
	if len(keys) == 2 {
		opts = append(opts, clientv3.WithRange(keys[1]))
	}
	if c.Bool("prefix") {
		opts = append(opts, clientv3.WithPrefix())
	}
	if c.Bool("prev-kv") {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if c.Bool("progress-notify") {
		opts = append(opts, clientv3.WithProgressNotify())
	}
	return opts
}

// watchPrinter prints watch responses and runs their commands.
type watchPrinter struct {
	cc             clientConfig
	mu             sync.Mutex // interactive mode's watches print from their own goroutines
	stdout, stderr io.Writer
}

// follow watches until the server ends the watch, printing each response
// and running req's command for each event. It returns an exit error if a
// command failed or stdout could not be written.
func (p *watchPrinter) follow(ctx context.Context, client *clientv3.Client, req watchRequest) error {
	// WithRequireLeader: a member cut off from its leader cancels the watch
	// instead of leaving it silent.
	for resp := range client.Watch(clientv3.WithRequireLeader(ctx), req.key, req.opts...) {
		if err := p.print(&resp); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			if err := p.run(ctx, req.command, &resp, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// print writes one response as etcdctl does: a cancellation's reason on
// stderr, a progress notification's revision, then the events (each its
// type, the previous key-value pair with --prev-kv, the key and value) or
// the response as JSON.
func (p *watchPrinter) print(resp *clientv3.WatchResponse) error {
	var out bytes.Buffer
	if resp.IsProgressNotify() {
		fmt.Fprintf(&out, "progress notify: %d\n", resp.Header.GetRevision())
	}
	if p.cc.format == formatJSON {
		if err := writeJSON(&out, resp); err != nil {
			return cli.Exit(err.Error(), exitServerError)
		}
	} else {
		for _, ev := range resp.Events {
			fmt.Fprintln(&out, ev.Type)
			if ev.PrevKv != nil {
				writeKV(&out, p.cc.hex, false, ev.PrevKv)
			}
			writeKV(&out, p.cc.hex, false, ev.Kv)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if resp.Canceled {
		fmt.Fprintf(p.stderr, "watch was canceled (%v)\n", resp.Err())
	}
	if _, err := p.stdout.Write(out.Bytes()); err != nil {
		return cli.Exit(fmt.Sprintf("writing the output: %v", err), exitServerError)
	}
	return nil
}

// run runs command, if any, for one event, with etcdctl's variables: the
// response's revision, and the event's type, key and value quoted as Go
// strings. Its output goes where the watch's does.
func (p *watchPrinter) run(ctx context.Context, command []string, resp *clientv3.WatchResponse, ev *clientv3.Event) error {
	if len(command) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("ETCD_WATCH_REVISION=%d", resp.Header.GetRevision()),
		fmt.Sprintf("ETCD_WATCH_EVENT_TYPE=%q", ev.Type),
		fmt.Sprintf("ETCD_WATCH_KEY=%q", ev.Kv.GetKey()),
		fmt.Sprintf("ETCD_WATCH_VALUE=%q", ev.Kv.GetValue()))
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(p.stderr, "command %q error (%v)\n", command, err)
		return cli.Exit("", exitServerError)
	}
	return nil
}

// watchLine is one line of interactive mode, or how reading it failed.
type watchLine struct {
	text string
	err  error
}

// watchInteractive runs interactive mode: each watch line starts a watch
// that prints from its own goroutine; a progress line asks the server for
// a progress notification on every watch. A line it cannot make sense of
// is reported and skipped, as etcdctl does, except those etcdctl exits on:
// bad flags or arguments, a key beside ETCDCTL_WATCH_KEY, a "--" with no
// command after it.
func watchInteractive(c *cli.Context, cc clientConfig, envKey, envRange string) error {
	client, err := cc.dial(cc.endpoints)
	if err != nil {
		return serverError(c, err)
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	lines := make(chan watchLine)
	go readWatchLines(ctx, c.App.Reader, lines)
	fatal := make(chan error, 1) // the first failed watch's exit
	p := &watchPrinter{cc: cc, stdout: c.App.Writer, stderr: c.App.ErrWriter}
	for {
		var line watchLine
		select {
		case err := <-fatal:
			return err
		case line = <-lines:
		}
		if line.err != nil {
			return failure(c, exitInvalidInput, fmt.Errorf("error reading watch request line: %w", line.err))
		}
		words, err := argify(line.text)
		if err != nil {
			return failure(c, exitInvalidInput, err)
		}
		if len(words) == 0 {
			fmt.Fprintf(c.App.ErrWriter, "Invalid command: %s (watch and progress supported)\n", line.text)
			continue
		}
		switch words[0] {
		case "watch":
			if len(words) < 2 && envKey == "" {
				fmt.Fprintf(c.App.ErrWriter, "Invalid command %s (command type or key is not provided)\n", line.text)
				continue
			}
			req, invalid, err := parseWatchLine(c.App, words[1:], envKey, envRange)
			if err != nil {
				return badInput(err)
			}
			if invalid != nil {
				fmt.Fprintf(c.App.ErrWriter, "Invalid command %s (%v)\n", line.text, invalid)
				continue
			}
			go func() {
				if err := p.follow(ctx, client, req); err != nil {
					select {
					case fatal <- err:
					default:
					}
				}
			}()
		case "progress":
			if err := client.RequestProgress(clientv3.WithRequireLeader(ctx)); err != nil {
				return serverError(c, err)
			}
		default:
			fmt.Fprintf(c.App.ErrWriter, "Invalid command %s (only support watch)\n", line.text)
		}
	}
}

// readWatchLines sends each line of r, without its newline, until r ends
// or fails; the last thing sent is the error. A last line without a
// newline is not a line, as in etcdctl.
func readWatchLines(ctx context.Context, r io.Reader, lines chan<- watchLine) {
	br := bufio.NewReaderSize(r, watchLineMaxBytes)
	for {
		b, err := br.ReadSlice('\n')
		var line watchLine
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			line.err = fmt.Errorf("a line is over %d bytes", watchLineMaxBytes)
		case err != nil:
			line.err = err
		default:
			line.text = string(b[:len(b)-1])
		}
		select {
		case lines <- line:
		case <-ctx.Done():
			return
		}
		if line.err != nil {
			return
		}
	}
}

// parseWatchLine reads the words after "watch" on an interactive line. Its
// flags are only the watch flags, and only its own: etcdctl parses each
// line afresh. err is a line etcdctl exits on; invalid, one it reports and
// skips.
func parseWatchLine(app *cli.App, words []string, envKey, envRange string) (req watchRequest, invalid, err error) {
	head, tail := words, []string(nil)
	if i := slices.Index(words, "--"); i >= 0 {
		head, tail = words[:i], words[i:]
	}
	set := flag.NewFlagSet("watch", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	flags := watchFlags()
	for _, f := range flags {
		if err := f.Apply(set); err != nil {
			return req, nil, err
		}
	}
	// Flags may come after the key, as etcdctl's flag parser allows.
	var args []string
	for rest := head; ; {
		if err := set.Parse(rest); err != nil {
			return req, nil, err
		}
		if err := sameAliases(set, flags); err != nil {
			return req, nil, err
		}
		if rest = set.Args(); len(rest) == 0 {
			break
		}
		args, rest = append(args, rest[0]), rest[1:]
	}
	keys, command, err := watchArgs(append(args, tail...), envKey, envRange, true)
	if err != nil {
		return req, nil, err
	}
	line := cli.NewContext(app, set, nil)
	if err := checkWatchRange(keys, line.Bool("prefix")); err != nil {
		return req, err, nil
	}
	return watchRequest{key: keys[0], opts: watchOptions(line, keys), command: command}, nil, nil
}

// watchWordPattern is etcdctl's way of cutting a line into words: a double-
// quoted string with Go escapes, a single-quoted one, or a run of non-space.
var watchWordPattern = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`)

// argify cuts an interactive line into words, unquoting quoted ones.
func argify(line string) ([]string, error) {
	words := watchWordPattern.FindAllString(line, -1)
	for i, w := range words {
		switch w[0] {
		case '\'':
			words[i] = w[1 : len(w)-1]
		case '"':
			unquoted, err := strconv.Unquote(w)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w, err)
			}
			words[i] = unquoted
		}
	}
	return words, nil
}
