package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// putValueMaxBytes bounds a value read from stdin. It is etcd's client's
// default limit on a request (2 MiB): a larger value could not be sent.
const putValueMaxBytes = 2 << 20

// rangeDeleteGrace is how long `kv del KEY RANGE_END` waits, after its
// warning, before it deletes: etcdctl's chance to interrupt a typo. A
// variable so that tests need not wait.
var rangeDeleteGrace = 2 * time.Second

func kvCommand() *cli.Command {
	return &cli.Command{
		Name:        "kv",
		Usage:       "put, get, delete and watch keys, as etcdctl put, get, del and watch",
		Subcommands: []*cli.Command{kvPutCommand(), kvGetCommand(), kvDelCommand(), kvWatchCommand()},
	}
}

func kvPutCommand() *cli.Command {
	return &cli.Command{
		Name:      "put",
		Usage:     "put a key; the value is read from stdin when not given (exit 0: OK, 1: the server failed it, 2: bad input)",
		ArgsUsage: "KEY [VALUE]   (a VALUE that starts with '-' goes after '--': put KEY -- -VALUE)",
		Flags: withClientFlags(
			&cli.StringFlag{Name: "lease", Value: "0", Usage: "lease ID (in hexadecimal) to attach to the key"},
			&cli.BoolFlag{Name: "prev-kv", Usage: "print the previous key-value pair after OK"},
			&cli.BoolFlag{Name: "ignore-value", Usage: "update the key using its current value"},
			&cli.BoolFlag{Name: "ignore-lease", Usage: "update the key using its current lease"},
		),
		Action: kvPut,
	}
}

func kvPut(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	key, value, opts, err := putRequest(c)
	if err != nil {
		return badInput(err)
	}
	var resp *clientv3.PutResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.Put(ctx, key, value, opts...)
		return err
	})
	if err != nil {
		return serverError(c, err)
	}
	return cc.print(c, clientView{
		json: (*pb.PutResponse)(resp),
		simple: func(w *bytes.Buffer) {
			fmt.Fprintln(w, "OK")
			if resp.PrevKv != nil {
				writeKV(w, cc.hex, false, resp.PrevKv)
			}
		},
	})
}

// putRequest reads a put's key, value and options. etcdctl ignores
// arguments after the value; they are refused here, because `put k hello
// world` would otherwise store "hello" and say OK.
func putRequest(c *cli.Context) (key, value string, opts []clientv3.OpOption, err error) {
	args := positional(c)
	ignoreValue := c.Bool("ignore-value")
	switch {
	case len(args) == 0:
		return "", "", nil, errors.New("put command needs 1 argument and input from stdin or 2 arguments")
	case ignoreValue && len(args) > 1:
		return "", "", nil, errors.New("put command needs only 1 argument when 'ignore-value' is set")
	case len(args) > 2:
		return "", "", nil, fmt.Errorf("put command takes a key and one value, not %d arguments; quote a value with spaces", len(args))
	}
	key = args[0]
	if len(args) == 2 {
		value = args[1]
	} else if !ignoreValue {
		if value, err = readValue(c.App.Reader); err != nil {
			return "", "", nil, err
		}
	}
	lease, err := strconv.ParseInt(c.String("lease"), 16, 64)
	if err != nil {
		return "", "", nil, fmt.Errorf("bad lease ID (%w), expecting ID in Hex", err)
	}
	if lease != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(lease)))
	}
	if c.Bool("prev-kv") {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if c.Bool("ignore-lease") {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return key, value, opts, nil
}

// readValue reads a put's value from stdin, as etcdctl does when the value
// is not an argument. An empty stdin is an error there too.
func readValue(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, putValueMaxBytes+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("reading the value from stdin: %w", err)
	case len(b) > putValueMaxBytes:
		return "", fmt.Errorf("the value on stdin is over %d bytes", putValueMaxBytes)
	case len(b) == 0:
		return "", errors.New("put command needs 1 argument and input from stdin or 2 arguments")
	}
	return string(b), nil
}

func kvGetCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "get a key or a range of keys [KEY, RANGE_END) (exit 0: answered, 1: the server failed it, 2: bad input)",
		ArgsUsage: "KEY [RANGE_END]",
		Flags: withClientFlags(
			&cli.StringFlag{Name: "consistency", Value: "l", Usage: "Linearizable(l) or Serializable(s)"},
			&cli.StringFlag{Name: "order", Usage: "order of results; ASCEND or DESCEND (ASCEND by default)"},
			&cli.StringFlag{Name: "sort-by", Usage: "sort target; CREATE, KEY, MODIFY, VALUE, or VERSION"},
			&cli.Int64Flag{Name: "limit", Usage: "maximum number of results"},
			&cli.BoolFlag{Name: "prefix", Usage: "get keys with matching prefix"},
			&cli.BoolFlag{Name: "from-key", Usage: "get keys that are greater than or equal to the given key using byte compare"},
			&cli.Int64Flag{Name: "rev", Usage: "read at this revision"},
			&cli.BoolFlag{Name: "keys-only", Usage: "get only the keys"},
			&cli.BoolFlag{Name: "count-only", Usage: "get only the count, printed as a number (etcdctl: fields output only)"},
			&cli.BoolFlag{Name: "print-value-only", Usage: `only write values when using the "simple" output format`},
			&cli.Int64Flag{Name: "min-create-rev", Usage: "minimum create revision"},
			&cli.Int64Flag{Name: "max-create-rev", Usage: "maximum create revision"},
			&cli.Int64Flag{Name: "min-mod-rev", Usage: "minimum modification revision"},
			&cli.Int64Flag{Name: "max-mod-rev", Usage: "maximum modification revision"},
		),
		Action: kvGet,
	}
}

func kvGet(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	key, opts, err := getRequest(c)
	if err != nil {
		return badInput(err)
	}
	valueOnly, countOnly := c.Bool("print-value-only"), c.Bool("count-only")
	if valueOnly && cc.format != formatSimple {
		return badInput(errors.New("print-value-only is only for `--write-out=simple`"))
	}
	var resp *clientv3.GetResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.Get(ctx, key, opts...)
		return err
	})
	if err != nil {
		return serverError(c, err)
	}
	return cc.print(c, clientView{
		json: (*pb.RangeResponse)(resp),
		simple: func(w *bytes.Buffer) {
			if countOnly {
				fmt.Fprintln(w, resp.Count)
				return
			}
			for _, kv := range resp.Kvs {
				writeKV(w, cc.hex, valueOnly, kv)
			}
		},
	})
}

// getRequest reads a get's key and options, refusing what etcdctl refuses.
func getRequest(c *cli.Context) (string, []clientv3.OpOption, error) {
	args := positional(c)
	switch {
	case len(args) == 0 || len(args) > 2:
		return "", nil, errors.New("get command needs one argument as key and an optional argument as range_end")
	case c.Bool("keys-only") && c.Bool("count-only"):
		return "", nil, errors.New("`--keys-only` and `--count-only` cannot be set at the same time, choose one")
	}
	key, opts, err := rangeOf(c, args)
	if err != nil {
		return "", nil, err
	}
	switch c.String("consistency") {
	case "l":
	case "s":
		opts = append(opts, clientv3.WithSerializable())
	default:
		return "", nil, fmt.Errorf("unknown consistency flag %q", c.String("consistency"))
	}
	sort, err := sortOf(c.String("sort-by"), c.String("order"))
	if err != nil {
		return "", nil, err
	}
	opts = append(opts, clientv3.WithLimit(c.Int64("limit")), sort)
	if rev := c.Int64("rev"); rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	if c.Bool("keys-only") {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if c.Bool("count-only") {
		opts = append(opts, clientv3.WithCountOnly())
	}
	filters, err := revisionFilters(c)
	return key, append(opts, filters...), err
}

// rangeOf turns KEY [RANGE_END] and --prefix or --from-key into a range, as
// etcdctl does: an empty key with either flag means every key.
func rangeOf(c *cli.Context, args []string) (string, []clientv3.OpOption, error) {
	prefix, fromKey := c.Bool("prefix"), c.Bool("from-key")
	key := args[0]
	var opts []clientv3.OpOption
	switch {
	case prefix && fromKey:
		return "", nil, errors.New("`--prefix` and `--from-key` cannot be set at the same time, choose one")
	case len(args) == 2 && (prefix || fromKey):
		return "", nil, errors.New("too many arguments, only accept one argument when `--prefix` or `--from-key` is set")
	case len(args) == 2:
		opts = append(opts, clientv3.WithRange(args[1]))
	case prefix && key == "", fromKey && key == "":
		key = "\x00"
		opts = append(opts, clientv3.WithFromKey())
	case prefix:
		opts = append(opts, clientv3.WithPrefix())
	case fromKey:
		opts = append(opts, clientv3.WithFromKey())
	}
	return key, opts, nil
}

// sortOf reads --sort-by and --order, case-insensitively as etcdctl does.
func sortOf(target, order string) (clientv3.OpOption, error) {
	orders := map[string]clientv3.SortOrder{"": clientv3.SortNone, "ASCEND": clientv3.SortAscend, "DESCEND": clientv3.SortDescend}
	targets := map[string]clientv3.SortTarget{
		"": clientv3.SortByKey, "KEY": clientv3.SortByKey, "CREATE": clientv3.SortByCreateRevision,
		"MODIFY": clientv3.SortByModRevision, "VALUE": clientv3.SortByValue, "VERSION": clientv3.SortByVersion,
	}
	o, ok := orders[strings.ToUpper(order)]
	if !ok {
		return nil, fmt.Errorf("bad sort order %v", order)
	}
	t, ok := targets[strings.ToUpper(target)]
	if !ok {
		return nil, fmt.Errorf("bad sort target %v", target)
	}
	return clientv3.WithSort(t, o), nil
}

// revisionFilters reads the --min/--max create and mod revision bounds.
func revisionFilters(c *cli.Context) ([]clientv3.OpOption, error) {
	var opts []clientv3.OpOption
	for _, f := range []struct {
		min, max         string
		withMin, withMax func(int64) clientv3.OpOption
	}{
		{"min-create-rev", "max-create-rev", clientv3.WithMinCreateRev, clientv3.WithMaxCreateRev},
		{"min-mod-rev", "max-mod-rev", clientv3.WithMinModRev, clientv3.WithMaxModRev},
	} {
		lo, hi := c.Int64(f.min), c.Int64(f.max)
		if lo > 0 {
			opts = append(opts, f.withMin(lo))
		}
		if hi > 0 {
			if lo > hi {
				return nil, fmt.Errorf("--%s (%d) is above --%s (%d)", f.min, lo, f.max, hi)
			}
			opts = append(opts, f.withMax(hi))
		}
	}
	return opts, nil
}

func kvDelCommand() *cli.Command {
	return &cli.Command{
		Name:      "del",
		Usage:     "delete a key or a range of keys [KEY, RANGE_END), and print how many (exit 0: done, 1: the server failed it, 2: bad input)",
		ArgsUsage: "KEY [RANGE_END]",
		Flags: withClientFlags(
			&cli.BoolFlag{Name: "prefix", Usage: "delete keys with matching prefix"},
			&cli.BoolFlag{Name: "prev-kv", Usage: "print the deleted key-value pairs"},
			&cli.BoolFlag{Name: "from-key", Usage: "delete keys that are greater than or equal to the given key using byte compare"},
			&cli.BoolFlag{Name: "range", Usage: "delete [KEY, RANGE_END) without the warning and its 2s pause"},
		),
		Action: kvDel,
	}
}

func kvDel(c *cli.Context) error {
	cc, err := clientConfigOf(c, formatSimple, formatJSON)
	if err != nil {
		return badInput(err)
	}
	args := positional(c)
	if len(args) == 0 || len(args) > 2 {
		return badInput(errors.New("del command needs one argument as key and an optional argument as range_end"))
	}
	key, opts, err := rangeOf(c, args)
	if err != nil {
		return badInput(err)
	}
	if c.Bool("prev-kv") {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if len(args) == 2 && !c.Bool("range") {
		if err := warnRangeDelete(c, args[0], args[1]); err != nil {
			return err
		}
	}
	var resp *clientv3.DeleteResponse
	err = cc.call(c, func(ctx context.Context, client *clientv3.Client) (err error) {
		resp, err = client.Delete(ctx, key, opts...)
		return err
	})
	if err != nil {
		return serverError(c, err)
	}
	return cc.print(c, clientView{
		json: (*pb.DeleteRangeResponse)(resp),
		simple: func(w *bytes.Buffer) {
			fmt.Fprintln(w, resp.Deleted)
			for _, kv := range resp.PrevKvs {
				writeKV(w, cc.hex, false, kv)
			}
		},
	})
}

// warnRangeDelete says which keys are about to go and pauses, as etcdctl
// does, because a range end typed for a key deletes everything between.
func warnRangeDelete(c *cli.Context, key, end string) error {
	fmt.Fprintf(c.App.ErrWriter, "Warning: Keys between %q and %q will be deleted. Please interrupt the command within next 2 seconds to cancel. "+
		"You can provide `--range` flag to avoid the delay.\n", key, end)
	select {
	case <-time.After(rangeDeleteGrace):
		return nil
	case <-c.Context.Done():
		return serverError(c, c.Context.Err())
	}
}
