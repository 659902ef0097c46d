package main

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/plumbdb/plumb/server"
)

// The binary answers to etcd's names, so that a link named etcd or
// etcdctl drops in where etcd's binaries were: started as `etcd ARGS` it
// is `plumb node serve ARGS`; as `etcdctl CMD ARGS` it is plumb's client
// command for CMD where plumb has one (put, get, del and watch are under
// `plumb kv`), and refuses the others with a message that says so.

// Names the binary answers to.
const (
	etcdName    = "etcd"
	etcdctlName = "etcdctl"
)

// etcdAPIMinor is the etcd API version plumb speaks, as etcdctl prints it.
var etcdAPIMinor = strings.Join(strings.SplitN(server.APIVersion, ".", 3)[:2], ".")

// etcdctlCommands maps etcdctl's commands to plumb's.
var etcdctlCommands = map[string][]string{
	"put": {"kv", "put"}, "get": {"kv", "get"}, "del": {"kv", "del"}, "watch": {"kv", "watch"},
	"lease": {"lease"}, "member": {"member"}, "endpoint": {"endpoint"},
	"lock": {"lock"}, "elect": {"elect"}, "snapshot": {"snapshot"},
}

// etcdctlValueFlags are etcdctl's global flags that take a value, so that
// they can be told from the command when they come before it.
var etcdctlValueFlags = []string{"endpoints", "dial-timeout", "command-timeout", "keepalive-time", "keepalive-timeout",
	"write-out", "w", "cacert", "cert", "key", "user", "password", "discovery-srv", "discovery-srv-name", "auth-jwt-token"}

// byName turns args for the binary run under one of etcd's names into
// plumb's, or says what to do instead: print (and exit 0), or refuse.
func byName(args []string) (out []string, print string, refuse error) {
	switch filepath.Base(args[0]) {
	case etcdName:
		if len(args) == 2 && (args[1] == "--version" || args[1] == "-version") {
			return nil, versionText(), nil
		}
		return append([]string{args[0], "node", "serve"}, args[1:]...), "", nil
	case etcdctlName:
		return etcdctlArgs(args)
	}
	return args, "", nil
}

func etcdctlArgs(args []string) ([]string, string, error) {
	var global []string
	i := 1
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		global = append(global, args[i])
		name := strings.TrimLeft(args[i], "-")
		if !strings.Contains(name, "=") && slices.Contains(etcdctlValueFlags, name) && i+1 < len(args) {
			i++
			global = append(global, args[i])
		}
	}
	if i == len(args) {
		if slices.Contains(global, "--version") {
			return nil, etcdctlVersionText(), nil
		}
		return nil, "", fmt.Errorf("etcdctl: name a command; plumb covers %s", coveredCommands())
	}
	name, rest := args[i], args[i+1:]
	if name == "version" {
		return nil, etcdctlVersionText(), nil
	}
	to, ok := etcdctlCommands[name]
	if !ok {
		return nil, "", fmt.Errorf("etcdctl %s: plumb's client does not cover this command (it covers %s); "+
			"etcd's own etcdctl 3.7 works against plumb, which serves etcd's API", name, coveredCommands())
	}
	// A command with subcommands: the subcommand must be one of plumb's.
	cmds := []*cli.Command{kvCommand(), leaseCommand(), lockCommand(), electCommand(), memberCommand(), endpointCommand(), snapshotCommand()}
	cmd := findCommand(cmds, to[0])
	for _, sub := range to[1:] {
		cmd = findCommand(cmd.Subcommands, sub)
	}
	if len(cmd.Subcommands) > 0 {
		sub := slices.IndexFunc(rest, func(a string) bool { return !strings.HasPrefix(a, "-") })
		if sub >= 0 && findCommand(cmd.Subcommands, rest[sub]) == nil {
			var have []string
			for _, c := range cmd.Subcommands {
				have = append(have, c.Name)
			}
			return nil, "", fmt.Errorf("etcdctl %s %s: plumb's client does not cover this command (it covers %s %s); "+
				"etcd's own etcdctl 3.7 works against plumb, which serves etcd's API", name, rest[sub], name, strings.Join(have, ", "))
		}
	}
	out := append([]string{args[0]}, to...)
	out = append(out, rest...)
	return append(out, global...), "", nil
}

func coveredCommands() string {
	names := make([]string, 0, len(etcdctlCommands)+1)
	for n := range etcdctlCommands {
		names = append(names, n)
	}
	names = append(names, "version")
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// gitSHA is the commit the binary was built from, as etcd prints it.
func gitSHA() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "Not provided (built without VCS information)"
}

// versionText is `etcd --version`'s output: etcd's lines, with the etcd
// API version plumb speaks, then plumb's own version.
func versionText() string {
	return fmt.Sprintf("etcd Version: %s\nGit SHA: %s\nGo Version: %s\nGo OS/Arch: %s/%s\nplumb Version: %s\n",
		server.APIVersion, gitSHA(), runtime.Version(), runtime.GOOS, runtime.GOARCH, version)
}

// etcdctlVersionText is `etcdctl version`'s output, and plumb's version.
func etcdctlVersionText() string {
	return fmt.Sprintf("etcdctl version: %s\nAPI version: %s\nplumb version: %s\n", server.APIVersion, etcdAPIMinor, version)
}

// printVersion is `plumb --version`: etcd's format.
func printVersion(w io.Writer) { fmt.Fprint(w, versionText()) }

func init() {
	// urfave/cli's --version printer is a package variable: set once.
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
}
