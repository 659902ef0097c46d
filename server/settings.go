package server

import (
	"bytes"
	"errors"
	"fmt"
	"golang.org/x/crypto/bcrypt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
	"gopkg.in/yaml.v3"
)

// Where a setting comes from, and what Resolve does when it comes from more
// than one place. (README.md quotes this comment; keep the two in step.)
//
// A setting can be given in one of three places, or left to its default:
//
//   - on the command line: --initial-cluster-token=t1
//   - in the environment: PLUMB_INITIAL_CLUSTER_TOKEN=t1, or etcd's
//     ETCD_INITIAL_CLUSTER_TOKEN=t1, so that etcd's environment files work
//     unchanged (upper case, '-' as '_')
//   - in the YAML config file named by --config-file, PLUMB_CONFIG_FILE or
//     ETCD_CONFIG_FILE: "initial-cluster-token: t1"
//   - otherwise, etcd's default (Setting.Default)
//
// The rules:
//
//  1. A setting comes from one place. Given in two (a flag and an
//     environment variable, a flag and the file, an environment variable
//     and the file), it is an error that names both: "--name is set on the
//     command line and by ETCD_NAME in the environment; unset one". etcd
//     refuses a flag shadowing an environment variable too; but etcd
//     silently ignores every flag and environment variable once a config
//     file is given, and plumb refuses instead, because the value that
//     silently lost was a mistake waiting to be found.
//  2. PLUMB_X and ETCD_X may both be set only to the same value.
//  3. Different settings from different places merge: the file can hold
//     the cluster's layout while the environment gives --name.
//  4. An empty value (ETCD_NAME=, --name=, "name:" or name: "" in the file)
//     is the same as no value. etcd does this for environment variables;
//     plumb does it everywhere, so that a blank line in a template means
//     the default and never conflicts with anything.
//  5. An unknown flag or PLUMB_* variable is an error (with a suggestion
//     when it is close to a known name). An unknown ETCD_* variable is a
//     warning, as in etcd, because ETCD_VER and the like are common.
//     ETCDCTL_* variables belong to the client and are not looked at.
//  6. etcd settings that plumb lacks (etcdOnlySettings), on the command
//     line, in the file or as ETCD_* variables: a value that asks for
//     nothing (empty, false, off, etcd's default) is ignored; a knob that
//     only tunes etcd is ignored with a warning; a value that asks for
//     something plumb cannot do (v2 discovery, the v2 API, ...) is an
//     error saying plumb does not support it yet. etcd 3.6's
//     --experimental-* flags are refused on the command line, as etcd 3.7
//     refuses them, naming their 3.7 flag or feature gate
//     (experimentalRenamed), and ignored with a warning that names it in
//     the environment and the file.
//  7. Computed defaults, as etcd's: --data-dir is "<name>.etcd" and
//     --initial-cluster is "<name>=<url>" for each of
//     --initial-advertise-peer-urls, unless --discovery-srv or
//     --discovery-endpoints is to make it.
//  8. As in etcd, --advertise-client-urls is required when
//     --listen-client-urls is set (anywhere), and
//     --initial-advertise-peer-urls when --listen-peer-urls is set and
//     --initial-cluster-state is new: the defaults name localhost, which
//     the other members cannot reach.

// ConfigFileFlag is the flag that names the YAML config file, and with the
// PLUMB_ and ETCD_ prefixes the environment variables that do. It is the
// last entry of Settings, so that the command line makes a flag of it like
// the others, but it is a source rather than a setting: it has no Config
// field and cannot appear inside the file.
const ConfigFileFlag = "config-file"

// The bounds on settings and on the config file.
const (
	electionTimeoutMaxMs  = 50000 // etcd's maxElectionMs
	electionHeartbeatMin  = 5     // etcd: the election timeout is at least 5 heartbeats
	requestBytesMax       = 64 << 20
	quotaBackendBytesMax  = 100 << 30
	quotaBackendBytesWarn = 8 << 30 // etcd warns above this size
	configFileBytesMax    = 1 << 20
	nameSuggestDistance   = 2 // edits for a "did you mean"
	maxLearnersMax        = 1000
)

const (
	plumbEnvPrefix = "PLUMB_"
	etcdEnvPrefix  = "ETCD_"
)

// Setting is one of `plumb node serve`'s settings: its flag name (etcd's),
// its default as the help shows it, and its help text.
type Setting struct {
	Name    string // etcd's flag name, without dashes: "initial-cluster"
	Default string // the value used when nothing sets it; for data-dir and initial-cluster a description of the computed default
	Usage   string
}

// EnvVars returns the environment variables that set s, plumb's first:
// PLUMB_INITIAL_CLUSTER, ETCD_INITIAL_CLUSTER. They are for help text. Do
// not hand them to the flag library: Resolve reads the environment itself,
// because it must see a flag and a variable both set to refuse it.
func (s Setting) EnvVars() []string {
	return []string{envName(plumbEnvPrefix, s.Name), envName(etcdEnvPrefix, s.Name)}
}

// Settings is every setting, the one list the command line, the
// environment, the config file and the help are made from. The command
// line should declare each as a string flag with no value of its own
// (Default goes in the help text) and pass Resolve only the flags the user
// set, so that Resolve sees which place each value came from.
var Settings = []Setting{
	{"name", "default", "Human-readable name for this member."},
	{"data-dir", "${name}.etcd", "Path to the data directory."},
	{"listen-peer-urls", "http://localhost:2380", "List of URLs to listen on for peer traffic."},
	{"listen-client-urls", "http://localhost:2379", "List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified."},
	{"listen-client-http-urls", "", "List of URLs to listen on for http only client traffic. Enabling this flag removes http services from --listen-client-urls."},
	{"advertise-client-urls", "http://localhost:2379", "List of this member's client URLs to advertise to the public; required when --listen-client-urls is set."},
	{"initial-advertise-peer-urls", "http://localhost:2380", "List of this member's peer URLs to advertise to the rest of the cluster; required when --listen-peer-urls is set for a new cluster."},
	{"initial-cluster", "default=http://localhost:2380", "Initial cluster configuration for bootstrapping, name=url,...; unset, it is ${name}=${initial-advertise-peer-urls}."},
	{"initial-cluster-state", ClusterStateNew, "Initial cluster state ('new' or 'existing')."},
	{"initial-cluster-token", "etcd-cluster", "Initial cluster token for the cluster during bootstrap."},
	{"discovery-srv", "", "DNS domain used to bootstrap initial cluster: its _etcd-server._tcp SRV records name the members, instead of --initial-cluster."},
	{"discovery-srv-name", "", "Service name to query when using DNS discovery: the records are _etcd-server-NAME._tcp.DOMAIN."},
	{"discovery-srv-resolver", "", "plumb only: HOST:PORT of the DNS server to ask instead of /etc/resolv.conf's, for the SRV records and every host name the member resolves (peer URLs included)."},
	{"discovery-endpoints", "", "V3 discovery: list of client URLs of the existing cluster that holds the discovery keys."},
	{"discovery-token", "", "V3 discovery: discovery token for the cluster to be bootstrapped; it is also the cluster's --initial-cluster-token."},
	{"discovery-dial-timeout", "2s", "V3 discovery: dial timeout for client connections."},
	{"discovery-request-timeout", "5s", "V3 discovery: timeout for discovery requests (excluding dial timeout)."},
	{"discovery-keepalive-time", "2s", "V3 discovery: keepalive time for client connections."},
	{"discovery-keepalive-timeout", "6s", "V3 discovery: keepalive timeout for client connections."},
	{"heartbeat-interval", "100", "Time (in milliseconds) of a heartbeat interval."},
	{"election-timeout", "1000", "Time (in milliseconds) for an election to timeout."},
	{"snapshot-count", "10000", "Number of committed transactions to trigger a snapshot to disk."},
	{"max-request-bytes", "1572864", "Maximum client request size in bytes the server will accept."},
	{"max-txn-ops", "128", "Maximum number of operations permitted in a transaction."},
	{"quota-backend-bytes", "0", "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB)."},
	{"auto-compaction-mode", CompactionModePeriodic, "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."},
	{"auto-compaction-retention", "0", "Auto compaction retention for mvcc key value store. 0 means disable auto compaction."},
	{"cert-file", "", "Path to the client server TLS cert file."},
	{"key-file", "", "Path to the client server TLS key file."},
	{"trusted-ca-file", "", "Path to the client server TLS trusted CA cert file; setting it requires client certificates signed by it, as --client-cert-auth does."},
	{"client-cert-auth", "false", "Enable client cert authentication."},
	{"auto-tls", "false", "Client TLS using generated certificates (self-signed, in ${data-dir}/fixtures/client), when --cert-file and --key-file are not given."},
	{"self-signed-cert-validity", "1", "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1."},
	{"cipher-suites", "", "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go)."},
	{"tls-min-version", "TLS1.2", "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3."},
	{"tls-max-version", "", "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty defers to Go)."},
	{"client-cert-file", "", "Path to an explicit peer client TLS cert file otherwise cert file will be used when client auth is required."},
	{"client-key-file", "", "Path to an explicit peer client TLS key file otherwise key file will be used when client auth is required."},
	{"client-crl-file", "", "Path to the client certificate revocation list file."},
	{"client-cert-allowed-hostname", "", "Comma-separated list of SAN hostnames for client cert authentication."},
	{"peer-cert-file", "", "Path to the peer server TLS cert file."},
	{"peer-key-file", "", "Path to the peer server TLS key file."},
	{"peer-client-cert-file", "", "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required."},
	{"peer-client-key-file", "", "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required."},
	{"peer-client-cert-auth", "false", "Enable peer client cert authentication."},
	{"peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file; setting it requires peer certificates signed by it, as --peer-client-cert-auth does."},
	{"peer-auto-tls", "false", "Peer TLS using self-generated certificates (in ${data-dir}/fixtures/peer) if --peer-key-file and --peer-cert-file are not provided."},
	{"peer-cert-allowed-cn", "", "Comma-separated list of allowed CNs for inter-peer TLS authentication."},
	{"peer-cert-allowed-hostname", "", "Comma-separated list of allowed SAN hostnames for inter-peer TLS authentication."},
	{"peer-crl-file", "", "Path to the peer certificate revocation list file."},
	{"peer-skip-client-san-verification", "false", "Skip verification of SAN field in client certificate for peer connections."},
	{"log-level", "info", "Configures log level: debug, info, warn or error."},
	{"logger", LoggerZap, "Currently only supports 'zap' for structured logging."},
	{"log-outputs", LogOutputDefault, "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."},
	{"log-format", LogFormatJSON, "Configures log format. Only supports json, console."},
	{"feature-gates", "", "A set of key=value pairs that describe server level feature gates, as etcd 3.7's: " + featureGateHelp()},
	{"metrics", MetricsBasic, "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics."},
	{"listen-metrics-urls", "", "List of URLs to listen on for the metrics and health endpoints."},
	{"enable-pprof", "false", "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"."},
	{"enable-grpc-gateway", "true", "Enable GRPC gateway (etcd's JSON API under /v3/ on the client URLs' HTTP side)."},
	{"strict-reconfig-check", "true", "Reject reconfiguration requests that would cause quorum loss."},
	{"max-learners", "1", "Sets the maximum number of learners that can be available in the cluster membership."},
	{"auth-token", "simple", "Specify a v3 authentication token type and token specific options, especially for JWT. Its format is \"type,var1=val1,var2=val2,...\". Possible type is 'simple' or 'jwt'. Possible variables are 'sign-method' for specifying a sign method of jwt (its possible values are 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512' or 'EdDSA'), 'pub-key' for specifying a path to a public key for verifying jwt, 'priv-key' for specifying a path to a private key for signing jwt, and 'ttl' for specifying TTL of jwt tokens."},
	{"bcrypt-cost", "10", "Specify bcrypt algorithm cost factor for auth password hashing."},
	{"auth-token-ttl", "300", "The lifetime in seconds of the auth token."},
	{"warning-apply-duration", "100ms", "Warning is generated if requests take more than this duration (counted in etcd_server_slow_apply_total; integer nanoseconds in the config file, as etcd takes it there)."},
	{"watch-progress-notify-interval", "10m", "Duration of periodic watch progress notifications (10m, 500ms; integer nanoseconds in the config file, as etcd takes it there)."},
	{ConfigFileFlag, "", "Path to a YAML config file with the same keys as the flags; a setting given both there and as a flag or environment variable is an error."},
}

// computedDefault holds the settings whose default is worked out from
// others after resolution; their Setting.Default only describes it.
var computedDefault = map[string]bool{"data-dir": true, "initial-cluster": true}

// boolSetting holds the settings that are switches: the command line takes
// them as etcd does, --enable-pprof with no value.
var boolSetting = map[string]bool{"enable-pprof": true, "enable-grpc-gateway": true, "strict-reconfig-check": true, "client-cert-auth": true, "auto-tls": true,
	"peer-client-cert-auth": true, "peer-auto-tls": true, "peer-skip-client-san-verification": true}

// IsBool reports whether s is a switch (a bool flag on the command line;
// "true" or "false" everywhere else).
func (s Setting) IsBool() bool { return boolSetting[s.Name] }

// listSetting holds the settings whose value is a comma-separated list,
// which the config file may also give as a YAML sequence of strings.
var listSetting = map[string]bool{
	"listen-peer-urls": true, "listen-client-urls": true, "listen-client-http-urls": true, "advertise-client-urls": true,
	"initial-advertise-peer-urls": true, "initial-cluster": true,
	"discovery-endpoints": true, "cipher-suites": true, "listen-metrics-urls": true, "log-outputs": true,
	"client-cert-allowed-hostname": true, "peer-cert-allowed-cn": true, "peer-cert-allowed-hostname": true,
}

// Sources are the places Resolve reads settings from.
type Sources struct {
	// Flags are the flags the user set on the command line, by name
	// without dashes, as raw strings. Flags left at their default must not
	// be here.
	Flags map[string]string
	// Environ is the environment in os.Environ's "KEY=value" form.
	Environ []string
}

// Resolve works out a member's Config from the command line, the
// environment and the config file, by the rules above, and checks it. The
// config file is its only I/O. It returns warnings for the caller to log
// (also alongside an error), and an error that lists every problem found,
// each naming the setting and where its value came from.
func Resolve(src Sources) (Config, []string, error) {
	r := &resolution{chosen: map[string]settingValue{}}
	r.readFlags(src.Flags)
	r.readEnviron(src.Environ)
	if path, ok := r.pick(ConfigFileFlag); ok {
		r.readFile(path)
	}
	for _, s := range Settings {
		if s.Name == ConfigFileFlag {
			continue
		}
		if v, ok := r.pick(s.Name); ok {
			r.chosen[s.Name] = v
		}
	}
	c := r.build()
	r.checkRequired(c)
	if len(r.errs) == 0 {
		for _, err := range c.validate() {
			r.errs = append(r.errs, r.annotate(err))
		}
	}
	if len(r.errs) > 0 {
		return Config{}, r.warnings, errors.Join(r.errs...)
	}
	if d := c.WatchProgressNotifyInterval; d > 0 && d < watchProgressIntervalMin {
		r.warnings = append(r.warnings, r.chosen["watch-progress-notify-interval"].describe("watch-progress-notify-interval",
			fmt.Sprintf("%v is below the minimum, %v, which is used instead", d, watchProgressIntervalMin)))
	}
	if warnings, _ := checkFeatureGates(c.FeatureGates); len(warnings) > 0 {
		for _, w := range warnings {
			r.warnings = append(r.warnings, r.chosen["feature-gates"].describe("feature-gates", w))
		}
	}
	if c.QuotaBackendBytes > quotaBackendBytesWarn {
		r.warnings = append(r.warnings, r.chosen["quota-backend-bytes"].describe("quota-backend-bytes",
			fmt.Sprintf("%d is above the recommended maximum of 8 GiB", c.QuotaBackendBytes)))
	}
	return c, r.warnings, nil
}

// sourceKind is the place a value came from.
type sourceKind int

const (
	fromDefault sourceKind = iota
	fromFlag
	fromEnv
	fromFile
)

// settingSource is where one value came from, for messages.
type settingSource struct {
	kind sourceKind
	name string // the environment variable, or the config file's path
	line int    // in the config file
}

func (s settingSource) String() string {
	switch s.kind {
	case fromFlag:
		return "the command line"
	case fromEnv:
		return s.name
	case fromFile:
		return fmt.Sprintf("%s:%d", s.name, s.line)
	}
	return "the default"
}

// place says where a value came from, as part of a sentence.
func (s settingSource) place() string {
	switch s.kind {
	case fromFlag:
		return "on the command line"
	case fromEnv:
		return "by " + s.name + " in the environment"
	case fromFile:
		return "in " + s.String()
	}
	return "by default"
}

// settingValue is a raw value and where it came from.
type settingValue struct {
	raw string
	src settingSource
}

// describe prefixes msg with the setting and where its value came from:
// "plumb.yaml:3: election-timeout: msg" for the file, where the user looks
// for the key as written, "--election-timeout: msg (from ETCD_ELECTION_TIMEOUT)"
// otherwise.
func (v settingValue) describe(name, msg string) string {
	if v.src.kind == fromFile {
		return fmt.Sprintf("%s: %s: %s", v.src, name, msg)
	}
	return fmt.Sprintf("--%s: %s (from %s)", name, msg, v.src)
}

func (v settingValue) errorf(name string, err error) error {
	return errors.New(v.describe(name, err.Error()))
}

// resolution is Resolve's working state: what each place holds, and the
// problems found so far.
type resolution struct {
	flags, plumbEnv, etcdEnv, file map[string]settingValue
	chosen                         map[string]settingValue // the settings that were set, and by what
	warnings                       []string
	errs                           []error
}

// readFlags takes the command line's flags. The flag library rejects
// unknown flags before Resolve runs; this check is for other callers.
func (r *resolution) readFlags(flags map[string]string) {
	r.flags = map[string]settingValue{}
	for _, name := range sortedKeys(flags) {
		if to, ok := experimentalRenamed[name]; ok {
			r.errs = append(r.errs, fmt.Errorf("--%s: etcd 3.7 removed this flag (and refuses it); its name is now %s", name, to))
			continue
		}
		if isEtcdOnly(name) {
			r.etcdOnly(name, settingValue{raw: flags[name], src: settingSource{kind: fromFlag}})
			continue
		}
		if !isSetting(name) {
			r.errs = append(r.errs, fmt.Errorf("unknown flag --%s%s", name, suggest(name, func(s string) string { return "--" + s })))
			continue
		}
		if flags[name] != "" {
			r.flags[name] = settingValue{raw: flags[name], src: settingSource{kind: fromFlag}}
		}
	}
}

// readEnviron takes the PLUMB_* and ETCD_* variables. A variable listed
// twice in environ counts once, the first time, as getenv reads it.
func (r *resolution) readEnviron(environ []string) {
	r.plumbEnv, r.etcdEnv = map[string]settingValue{}, map[string]settingValue{}
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if _, seen := vars[k]; ok && !seen {
			vars[k] = v
		}
	}
	for _, k := range sortedKeys(vars) {
		switch {
		case strings.HasPrefix(k, plumbEnvPrefix):
			r.readEnvVar(plumbEnvPrefix, k, vars[k], r.plumbEnv)
		case strings.HasPrefix(k, etcdEnvPrefix): // ETCDCTL_* does not match
			r.readEnvVar(etcdEnvPrefix, k, vars[k], r.etcdEnv)
		}
	}
}

func (r *resolution) readEnvVar(prefix, key, val string, dst map[string]settingValue) {
	name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(key, prefix), "_", "-"))
	exact := envName(prefix, name) == key // ETCD_name is not ETCD_NAME
	src := settingSource{kind: fromEnv, name: key}
	switch {
	case exact && isSetting(name):
		if val != "" {
			dst[name] = settingValue{raw: val, src: src}
		}
	case exact && prefix == etcdEnvPrefix && isEtcdOnly(name):
		r.etcdOnly(name, settingValue{raw: val, src: src})
	case exact && isEtcdOnly(name):
		r.errs = append(r.errs, fmt.Errorf("unknown environment variable %s: plumb does not support --%s yet", key, name))
	case prefix == plumbEnvPrefix:
		r.errs = append(r.errs, fmt.Errorf("unknown environment variable %s%s", key, suggest(name, func(s string) string { return envName(prefix, s) })))
	default:
		r.warnings = append(r.warnings, fmt.Sprintf("ignoring unknown environment variable %s%s", key, suggest(name, func(s string) string { return envName(prefix, s) })))
	}
}

// pick returns the value of setting name from the one place that gives
// it, or records the conflict when more than one does (rules 1 and 2).
func (r *resolution) pick(name string) (settingValue, bool) {
	flag, hasFlag := r.flags[name]
	plumb, hasPlumb := r.plumbEnv[name]
	etcd, hasEtcd := r.etcdEnv[name]
	file, hasFile := r.file[name]
	if hasPlumb && hasEtcd && plumb.raw != etcd.raw && !hasFlag && !hasFile {
		r.errs = append(r.errs, fmt.Errorf("--%s is set to %q by %s and to %q by %s in the environment; unset one",
			name, plumb.raw, plumb.src.name, etcd.raw, etcd.src.name))
		return settingValue{}, false
	}
	var places []string
	n := 0
	if hasFlag {
		places, n = append(places, flag.src.place()), n+1
	}
	switch {
	case hasPlumb && hasEtcd:
		places, n = append(places, "by "+plumb.src.name+" and "+etcd.src.name+" in the environment"), n+2
	case hasPlumb:
		places, n = append(places, plumb.src.place()), n+1
	case hasEtcd:
		places, n = append(places, etcd.src.place()), n+1
	}
	if hasFile {
		places, n = append(places, file.src.place()), n+1
	}
	if len(places) > 1 {
		advice := "unset one"
		if n > 2 {
			advice = "keep only one"
		}
		r.errs = append(r.errs, fmt.Errorf("--%s is set %s; %s", name, joinPlaces(places), advice))
		return settingValue{}, false
	}
	for _, v := range []settingValue{flag, plumb, etcd, file} {
		if v.raw != "" {
			return v, true
		}
	}
	return settingValue{}, false
}

// joinPlaces joins "a", "b" and "c" as "a, b and c".
func joinPlaces(places []string) string {
	if len(places) < 2 {
		return strings.Join(places, "")
	}
	return strings.Join(places[:len(places)-1], ", ") + " and " + places[len(places)-1]
}

// build parses each setting's default, then each value that was set, into
// a Config, and fills in the computed defaults (rule 7).
func (r *resolution) build() Config {
	var c Config
	for _, s := range Settings {
		f, ok := settingFields[s.Name]
		if !ok || computedDefault[s.Name] {
			continue
		}
		if err := f.parse(&c, s.Default); err != nil {
			panic(fmt.Sprintf("server: the default of --%s does not parse: %v", s.Name, err))
		}
	}
	for _, s := range Settings {
		v, ok := r.chosen[s.Name]
		if !ok {
			continue
		}
		f := settingFields[s.Name]
		parse := f.parse
		if fp, ok := fileParse[s.Name]; ok && v.src.kind == fromFile {
			parse = fp
		}
		if err := parse(&c, v.raw); err != nil {
			r.errs = append(r.errs, v.errorf(s.Name, err))
			continue
		}
		if err := f.check(&c); err != nil {
			r.errs = append(r.errs, v.errorf(s.Name, err))
		}
	}
	if _, ok := r.chosen["data-dir"]; !ok {
		c.DataDir = c.Name + ".etcd"
	}
	if _, ok := r.chosen["initial-cluster"]; !ok && !c.discovers() {
		c.InitialCluster = map[string][]string{c.Name: slices.Clone(c.InitialAdvertisePeerURLs)}
	}
	return c
}

// checkRequired applies rule 8: a listen URL set by hand means the
// advertised default (localhost) is wrong for everyone else.
func (r *resolution) checkRequired(c Config) {
	lc, setLC := r.chosen["listen-client-urls"]
	if _, setAC := r.chosen["advertise-client-urls"]; setLC && !setAC {
		r.errs = append(r.errs, fmt.Errorf("--advertise-client-urls is required when --listen-client-urls is set explicitly (--listen-client-urls from %s)", lc.src))
	}
	lp, setLP := r.chosen["listen-peer-urls"]
	if _, setAP := r.chosen["initial-advertise-peer-urls"]; setLP && !setAP && c.InitialClusterState == ClusterStateNew {
		r.errs = append(r.errs, fmt.Errorf("--initial-advertise-peer-urls is required when --listen-peer-urls is set explicitly and --initial-cluster-state is new (--listen-peer-urls from %s)", lp.src))
	}
}

// annotate adds where each value came from to an error from validate that
// involves several settings.
func (r *resolution) annotate(err error) error {
	var ce *crossError
	if !errors.As(err, &ce) {
		return err
	}
	var from []string
	for _, name := range ce.settings {
		from = append(from, fmt.Sprintf("--%s from %s", name, r.chosen[name].src))
	}
	return fmt.Errorf("%s (%s)", ce.msg, strings.Join(from, ", "))
}

// settingField is how one setting's raw value becomes a Config field
// (parse: syntax only) and how the field is checked on its own (check:
// bounds and form, shared with Validate).
type settingField struct {
	parse func(c *Config, raw string) error
	check func(c *Config) error
}

// fileParse holds the settings whose config file form differs from the
// command line's, as etcd's does; it parses them when they come from the
// file instead of settingField.parse.
var fileParse = map[string]func(c *Config, raw string) error{
	"watch-progress-notify-interval": func(c *Config, raw string) error {
		return parseFileDuration(&c.WatchProgressNotifyInterval, raw)
	},
	"warning-apply-duration": func(c *Config, raw string) error {
		return parseFileDuration(&c.WarningApplyDuration, raw)
	},
}

// settingFields has an entry for every setting but config-file.
var settingFields = map[string]settingField{
	"name": {
		func(c *Config, raw string) error { c.Name = raw; return nil },
		func(c *Config) error { return checkName(c.Name) }},
	"data-dir": {
		func(c *Config, raw string) error { c.DataDir = raw; return nil },
		func(c *Config) error { return checkNotEmpty(c.DataDir) }},
	"listen-peer-urls": {
		func(c *Config, raw string) error { return parseList(&c.ListenPeerURLs, raw) },
		func(c *Config) error { return checkPeerURLs(c.ListenPeerURLs, true) }},
	"listen-client-urls": {
		func(c *Config, raw string) error { return parseList(&c.ListenClientURLs, raw) },
		func(c *Config) error { return checkClientURLs(c.ListenClientURLs, true) }},
	"listen-client-http-urls": {
		func(c *Config, raw string) error { return parseOptionalList(&c.ListenClientHTTPURLs, raw) },
		func(c *Config) error {
			if len(c.ListenClientHTTPURLs) == 0 {
				return nil
			}
			return checkClientURLs(c.ListenClientHTTPURLs, true)
		}},
	"advertise-client-urls": {
		func(c *Config, raw string) error { return parseList(&c.AdvertiseClientURLs, raw) },
		func(c *Config) error { return checkClientURLs(c.AdvertiseClientURLs, false) }},
	"initial-advertise-peer-urls": {
		func(c *Config, raw string) error { return parseList(&c.InitialAdvertisePeerURLs, raw) },
		func(c *Config) error { return checkPeerURLs(c.InitialAdvertisePeerURLs, false) }},
	"initial-cluster": {
		parseInitialClusterField,
		func(c *Config) error {
			if len(c.InitialCluster) == 0 && c.discovers() {
				return nil // discovery makes it
			}
			return checkInitialCluster(c.InitialCluster)
		}},
	"initial-cluster-state": {
		func(c *Config, raw string) error { c.InitialClusterState = raw; return nil },
		func(c *Config) error { return checkOneOf(c.InitialClusterState, ClusterStateNew, ClusterStateExisting) }},
	"initial-cluster-token": {
		func(c *Config, raw string) error { c.InitialClusterToken = raw; return nil },
		func(c *Config) error { return nil }},
	"discovery-srv": {
		func(c *Config, raw string) error { c.DiscoverySRV = raw; return nil },
		func(c *Config) error { return checkDomain(c.DiscoverySRV) }},
	"discovery-srv-name": {
		func(c *Config, raw string) error { c.DiscoverySRVName = raw; return nil },
		func(c *Config) error { return checkSRVName(c.DiscoverySRVName) }},
	"discovery-srv-resolver": {
		func(c *Config, raw string) error { c.DiscoverySRVResolver = raw; return nil },
		func(c *Config) error { return checkResolver(c.DiscoverySRVResolver) }},
	"discovery-endpoints": {
		func(c *Config, raw string) error { return parseOptionalList(&c.DiscoveryEndpoints, raw) },
		func(c *Config) error { return checkEndpoints(c.DiscoveryEndpoints) }},
	"discovery-token": {
		func(c *Config, raw string) error { c.DiscoveryToken = raw; return nil },
		func(c *Config) error { return checkDiscoveryToken(c.DiscoveryToken) }},
	"discovery-dial-timeout": {
		func(c *Config, raw string) error { return parseDuration(&c.DiscoveryDialTimeout, raw) },
		func(c *Config) error { return checkNotNegative(c.DiscoveryDialTimeout) }},
	"discovery-request-timeout": {
		func(c *Config, raw string) error { return parseDuration(&c.DiscoveryRequestTimeout, raw) },
		func(c *Config) error { return checkNotNegative(c.DiscoveryRequestTimeout) }},
	"discovery-keepalive-time": {
		func(c *Config, raw string) error { return parseDuration(&c.DiscoveryKeepAliveTime, raw) },
		func(c *Config) error { return checkNotNegative(c.DiscoveryKeepAliveTime) }},
	"discovery-keepalive-timeout": {
		func(c *Config, raw string) error { return parseDuration(&c.DiscoveryKeepAliveTimeout, raw) },
		func(c *Config) error { return checkNotNegative(c.DiscoveryKeepAliveTimeout) }},
	"heartbeat-interval": {
		func(c *Config, raw string) error { return parseMs(&c.HeartbeatInterval, raw) },
		func(c *Config) error { return checkHeartbeat(c.HeartbeatInterval) }},
	"election-timeout": {
		func(c *Config, raw string) error { return parseMs(&c.ElectionTimeout, raw) },
		func(c *Config) error { return checkElection(c.ElectionTimeout) }},
	"snapshot-count": {
		func(c *Config, raw string) error { return parseCount(&c.SnapshotCount, raw) },
		func(c *Config) error { return checkRange(c.SnapshotCount, 1, 0) }},
	"max-request-bytes": {
		func(c *Config, raw string) error { return parseCount(&c.MaxRequestBytes, raw) },
		func(c *Config) error { return checkRange(c.MaxRequestBytes, 1, requestBytesMax) }},
	"max-txn-ops": {
		func(c *Config, raw string) error { return parseCount(&c.MaxTxnOps, raw) },
		func(c *Config) error { return checkRange(c.MaxTxnOps, 1, 0) }},
	"quota-backend-bytes": {
		parseQuota,
		func(c *Config) error { return checkQuota(c.QuotaBackendBytes) }},
	"auto-compaction-mode": {
		func(c *Config, raw string) error { c.AutoCompactionMode = raw; return nil },
		func(c *Config) error {
			return checkOneOf(c.AutoCompactionMode, CompactionModePeriodic, CompactionModeRevision)
		}},
	"auto-compaction-retention": {
		func(c *Config, raw string) error { c.AutoCompactionRetention = raw; return nil },
		func(c *Config) error {
			_, err := parseCompactionRetention(c.AutoCompactionMode, c.AutoCompactionRetention)
			return err
		}},
	"cert-file": {
		func(c *Config, raw string) error { c.CertFile = raw; return nil },
		func(c *Config) error { return nil }},
	"key-file": {
		func(c *Config, raw string) error { c.KeyFile = raw; return nil },
		func(c *Config) error { return nil }},
	"trusted-ca-file": {
		func(c *Config, raw string) error { c.TrustedCAFile = raw; return nil },
		func(c *Config) error { return nil }},
	"client-cert-auth": {
		func(c *Config, raw string) error { return parseBool(&c.ClientCertAuth, raw) },
		func(c *Config) error { return nil }},
	"auto-tls": {
		func(c *Config, raw string) error { return parseBool(&c.AutoTLS, raw) },
		func(c *Config) error { return nil }},
	"self-signed-cert-validity": {
		func(c *Config, raw string) error { return parseCount(&c.SelfSignedCertValidity, raw) },
		func(c *Config) error { return checkRange(c.SelfSignedCertValidity, 1, 0) }},
	"cipher-suites": {
		func(c *Config, raw string) error { return parseOptionalList(&c.CipherSuites, raw) },
		func(c *Config) error { _, err := tlsutil.GetCipherSuites(c.CipherSuites); return err }},
	"tls-min-version": {
		func(c *Config, raw string) error { c.TLSMinVersion = raw; return nil },
		func(c *Config) error { _, err := tlsutil.GetTLSVersion(c.TLSMinVersion); return err }},
	"tls-max-version": {
		func(c *Config, raw string) error { c.TLSMaxVersion = raw; return nil },
		func(c *Config) error { _, err := tlsutil.GetTLSVersion(c.TLSMaxVersion); return err }},
	"client-cert-file":                  stringField(func(c *Config) *string { return &c.ClientCertFile }),
	"client-key-file":                   stringField(func(c *Config) *string { return &c.ClientKeyFile }),
	"client-crl-file":                   stringField(func(c *Config) *string { return &c.ClientCRLFile }),
	"client-cert-allowed-hostname":      listField(func(c *Config) *[]string { return &c.ClientCertAllowedHostnames }),
	"peer-cert-file":                    stringField(func(c *Config) *string { return &c.PeerCertFile }),
	"peer-key-file":                     stringField(func(c *Config) *string { return &c.PeerKeyFile }),
	"peer-client-cert-file":             stringField(func(c *Config) *string { return &c.PeerClientCertFile }),
	"peer-client-key-file":              stringField(func(c *Config) *string { return &c.PeerClientKeyFile }),
	"peer-client-cert-auth":             boolField(func(c *Config) *bool { return &c.PeerClientCertAuth }),
	"peer-trusted-ca-file":              stringField(func(c *Config) *string { return &c.PeerTrustedCAFile }),
	"peer-auto-tls":                     boolField(func(c *Config) *bool { return &c.PeerAutoTLS }),
	"peer-cert-allowed-cn":              listField(func(c *Config) *[]string { return &c.PeerCertAllowedCNs }),
	"peer-cert-allowed-hostname":        listField(func(c *Config) *[]string { return &c.PeerCertAllowedHostnames }),
	"peer-crl-file":                     stringField(func(c *Config) *string { return &c.PeerCRLFile }),
	"peer-skip-client-san-verification": boolField(func(c *Config) *bool { return &c.PeerSkipClientSANVerification }),
	"log-level": {
		func(c *Config, raw string) error { c.LogLevel = raw; return nil },
		func(c *Config) error { return checkOneOf(c.LogLevel, "debug", "info", "warn", "error") }},
	"feature-gates": {
		func(c *Config, raw string) (err error) { c.FeatureGates, err = parseFeatureGates(raw); return err },
		func(c *Config) error { _, err := checkFeatureGates(c.FeatureGates); return err }},
	"logger": {
		func(c *Config, raw string) error { c.Logger = raw; return nil },
		func(c *Config) error { return checkLogger(c.Logger) }},
	"log-outputs": {
		func(c *Config, raw string) error { return parseList(&c.LogOutputs, raw) },
		func(c *Config) error { return checkLogOutputs(c.LogOutputs) }},
	"log-format": {
		func(c *Config, raw string) error { c.LogFormat = raw; return nil },
		func(c *Config) error { return checkLogFormat(c.LogFormat) }},
	"metrics": {
		func(c *Config, raw string) error { c.Metrics = raw; return nil },
		func(c *Config) error { return checkOneOf(c.Metrics, MetricsBasic, MetricsExtensive) }},
	"listen-metrics-urls": {
		func(c *Config, raw string) error { return parseOptionalList(&c.ListenMetricsURLs, raw) },
		func(c *Config) error {
			if len(c.ListenMetricsURLs) == 0 {
				return nil
			}
			return checkClientURLs(c.ListenMetricsURLs, true)
		}},
	"enable-pprof": {
		func(c *Config, raw string) error { return parseBool(&c.EnablePprof, raw) },
		func(c *Config) error { return nil }},
	"enable-grpc-gateway": {
		func(c *Config, raw string) error { return parseBool(&c.EnableGRPCGateway, raw) },
		func(c *Config) error { return nil }},
	"strict-reconfig-check": {
		func(c *Config, raw string) error { return parseBool(&c.StrictReconfigCheck, raw) },
		func(c *Config) error { return nil }},
	"auth-token": {
		func(c *Config, raw string) error { c.AuthToken = raw; return nil },
		func(c *Config) error { _, _, err := parseAuthToken(c.AuthToken); return err }},
	"bcrypt-cost": {
		func(c *Config, raw string) error { return parseCount(&c.BcryptCost, raw) },
		func(c *Config) error { return checkRange(c.BcryptCost, uint64(bcrypt.MinCost), uint64(bcrypt.MaxCost)) }},
	"auth-token-ttl": {
		func(c *Config, raw string) error { return parseCount(&c.AuthTokenTTL, raw) },
		func(c *Config) error { return checkRange(c.AuthTokenTTL, 1, 0) }},
	"max-learners": {
		func(c *Config, raw string) error { return parseCount(&c.MaxLearners, raw) },
		func(c *Config) error { return checkRange(c.MaxLearners, 1, maxLearnersMax) }},
	"warning-apply-duration": {
		func(c *Config, raw string) error { return parseDuration(&c.WarningApplyDuration, raw) },
		func(c *Config) error {
			if c.WarningApplyDuration < 0 {
				return fmt.Errorf("must not be negative (set to %s)", c.WarningApplyDuration)
			}
			return nil
		}},
	"watch-progress-notify-interval": {
		func(c *Config, raw string) error { return parseDuration(&c.WatchProgressNotifyInterval, raw) },
		func(c *Config) error { return nil }}, // any: 0 or less is the default, too short is raised
}

// stringField, boolField and listField are the settings whose value is
// taken as it is: the rules between settings check them (validateTLS).
func stringField(f func(*Config) *string) settingField {
	return settingField{func(c *Config, raw string) error { *f(c) = raw; return nil }, func(*Config) error { return nil }}
}

func boolField(f func(*Config) *bool) settingField {
	return settingField{func(c *Config, raw string) error { return parseBool(f(c), raw) }, func(*Config) error { return nil }}
}

func listField(f func(*Config) *[]string) settingField {
	return settingField{func(c *Config, raw string) error { return parseOptionalList(f(c), raw) }, func(*Config) error { return nil }}
}

// crossError is a problem with several settings together; Resolve adds
// where each of them came from.
type crossError struct {
	settings []string
	msg      string
}

func (e *crossError) Error() string { return e.msg }

// Validate checks c as Resolve does once the sources are merged: every
// field on its own, then the rules between fields. It is for a Config
// built in Go (tests, embedding); Resolve's result has passed it. Whether
// --name is in --initial-cluster is checked when a new member bootstraps,
// not here, because a restarted member ignores the --initial-* settings.
func (c *Config) Validate() error {
	return errors.Join(c.validate()...)
}

func (c *Config) validate() []error {
	var errs []error
	for _, s := range Settings {
		if f, ok := settingFields[s.Name]; ok {
			if err := f.check(c); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", s.Name, err))
			}
		}
	}
	if len(errs) > 0 {
		return errs // the rules between fields would only repeat these
	}
	errs = append(errs, c.validateDiscovery()...)
	errs = append(errs, c.validateTLS()...)
	errs = append(errs, c.validateClientHTTPURLs()...)
	if c.ElectionTimeout < electionHeartbeatMin*c.HeartbeatInterval {
		errs = append(errs, &crossError{[]string{"election-timeout", "heartbeat-interval"},
			fmt.Sprintf("--election-timeout[%vms] should be at least as 5 times as --heartbeat-interval[%vms]",
				c.ElectionTimeout.Milliseconds(), c.HeartbeatInterval.Milliseconds())})
	}
	return errs
}

// validateClientHTTPURLs is etcd's rule: a client address serves either
// gRPC and HTTP (--listen-client-urls) or HTTP alone
// (--listen-client-http-urls), not both.
func (c *Config) validateClientHTTPURLs() []error {
	hosts := map[string]bool{}
	for _, raw := range c.ListenClientURLs {
		if u, err := url.Parse(raw); err == nil {
			hosts[u.Host] = true
		}
	}
	for _, raw := range c.ListenClientHTTPURLs {
		if u, err := url.Parse(raw); err == nil && hosts[u.Host] {
			return []error{&crossError{[]string{"listen-client-urls", "listen-client-http-urls"},
				fmt.Sprintf("cannot bind both --listen-client-urls and --listen-client-http-urls on the same url %s", raw)}}
		}
	}
	return nil
}

func checkName(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	if strings.ContainsAny(name, ",=") {
		return fmt.Errorf("%q contains ',' or '=', which --initial-cluster cannot express", name)
	}
	return nil
}

func checkNotEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func checkOneOf(s string, valid ...string) error {
	if !slices.Contains(valid, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(valid, ", "))
	}
	return nil
}

// parseList splits a comma-separated list, trimming the spaces people put
// after commas. An empty entry is a typo ("a,,b"), not a value.
func parseList(dst *[]string, raw string) error {
	var out []string
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return fmt.Errorf("%q has an empty entry", raw)
		}
		out = append(out, item)
	}
	*dst = out
	return nil
}

// checkPeerURLs checks one member's peer URLs: http:// or https://
// (served with --peer-cert-file, see tls.go), not both, since the member
// is served and dialled with TLS or without. Listen URLs are bound, so
// their host must be an address (etcd's rule: it does not resolve names
// to bind).
func checkPeerURLs(urls []string, listen bool) error {
	if err := checkURLList(urls, listen, peerSchemes); err != nil {
		return err
	}
	return checkOneScheme(urls)
}

// checkOneScheme refuses a list that mixes URLs served with TLS
// (https://, unixs://) and without (http://, unix://).
func checkOneScheme(urls []string) error {
	for _, u := range urls[1:] {
		if isHTTPS(u) != isHTTPS(urls[0]) {
			return fmt.Errorf("%q and %q: a member's peer URLs must be all http:// or all https:// (unix:// counts as http://, unixs:// as https://)", urls[0], u)
		}
	}
	return nil
}

// isHTTPS reports whether u is served with TLS: https:// or unixs://.
func isHTTPS(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "unixs://")
}

// The URL schemes each kind of URL takes. Peer URLs may be unix sockets,
// as etcd's: unix://NAME:PORT listens on the socket file "NAME:PORT" in
// the working directory (the URL's host, as etcd takes it).
var (
	httpOnly      = []string{"http"}
	clientSchemes = []string{"http", "https", "unix"}
	peerSchemes   = []string{"http", "https", "unix", "unixs"}
)

// checkClientURLs is checkURLs for client URLs, which may also be
// https:// (served with --cert-file and --key-file, see tls.go).
func checkClientURLs(urls []string, listen bool) error {
	return checkURLList(urls, listen, clientSchemes)
}

func checkURLList(urls []string, listen bool, schemes []string) error {
	if len(urls) == 0 {
		return errors.New("must name at least one URL")
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if err := checkSchemeURL(u, listen, schemes); err != nil {
			return err
		}
		key := strings.ToLower(u)
		if seen[key] {
			return fmt.Errorf("%q is listed twice", u)
		}
		seen[key] = true
	}
	return nil
}

// checkURL checks that s is http://host:port with nothing else.
func checkURL(s string, listen bool) error { return checkSchemeURL(s, listen, httpOnly) }

// checkSchemeURL is checkURL for a URL whose scheme is one of schemes.
func checkSchemeURL(s string, listen bool, schemes []string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, errors.Unwrap(err))
	}
	unix := u.Scheme == "unix" || u.Scheme == "unixs"
	switch {
	case u.Scheme == "https" && !slices.Contains(schemes, u.Scheme):
		return fmt.Errorf("%q: TLS is not supported yet; use http://", s)
	case unix && !slices.Contains(schemes, u.Scheme):
		if u.Scheme == "unixs" && slices.Contains(schemes, "unix") {
			return fmt.Errorf("%q: TLS over a unix socket (unixs://) is not supported yet for client URLs; use unix:// or https://", s)
		}
		return fmt.Errorf("%q: unix sockets are not supported yet here; use http://host:port", s)
	case u.Scheme == "unix" && !slices.Contains(schemes, "unixs"):
		// A client URL: a socket file, named as etcd names it.
		return checkUnixURL(s, u)
	case !slices.Contains(schemes, u.Scheme) || u.Opaque != "":
		return fmt.Errorf("%q must be http://host:port, as in http://10.0.0.1:2380", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("%q must be just http://host:port, with no user, query or fragment", s)
	case u.Path != "":
		return fmt.Errorf("%q must not have a path", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if unix {
		if err != nil || host == "" {
			return fmt.Errorf("%q must be unix://NAME:PORT, as etcd takes it (the socket file is NAME:PORT in the working directory)", s)
		}
		return nil
	}
	if err != nil || host == "" {
		return fmt.Errorf("%q must have a host and a port, as in http://10.0.0.1:2380", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
	}
	if listen && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: a listen URL's host must be an IP address or \"localhost\", not a host name", s)
	}
	return nil
}

// checkUnixURL checks a unix:// client URL: as etcd, its socket is the
// file named by the host and path together (unix://localhost:2379 is the
// file "localhost:2379" in the working directory, unix:///run/etcd.sock
// the absolute path).
func checkUnixURL(s string, u *url.URL) error {
	switch {
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "":
		return fmt.Errorf("%q must be just unix://path, with no user, query or fragment", s)
	case unixSocketPath(u) == "":
		return fmt.Errorf("%q names no socket file, as unix:///run/etcd.sock or unix://localhost:2379", s)
	}
	return nil
}

// unixSocketPath is the file a unix:// URL names, as etcd reads it.
func unixSocketPath(u *url.URL) string { return u.Host + u.Path }

func parseInitialClusterField(c *Config, raw string) error {
	m, err := parseInitialClusterSyntax(raw)
	c.InitialCluster = m
	return err
}

// ParseInitialCluster parses --initial-cluster, "n1=http://10.0.0.1:2380,
// n2=http://10.0.0.2:2380", into member names and their peer URLs. A name
// may repeat, one URL each time, and its URLs collect in order, as in
// etcd. Names must be non-empty, URLs must be http://host:port or
// https://host:port (a member's all one or the other), and no URL may
// appear twice.
func ParseInitialCluster(s string) (map[string][]string, error) {
	m, err := parseInitialClusterSyntax(s)
	if err != nil {
		return nil, err
	}
	if err := checkInitialCluster(m); err != nil {
		return nil, err
	}
	return m, nil
}

func parseInitialClusterSyntax(s string) (map[string][]string, error) {
	var entries []string
	if err := parseList(&entries, s); err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, e := range entries {
		name, u, ok := strings.Cut(e, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		switch {
		case !ok:
			return nil, fmt.Errorf("%q is not name=url", e)
		case name == "":
			return nil, fmt.Errorf("%q has no member name before '='", e)
		case u == "":
			return nil, fmt.Errorf("%q has no URL after '='", e)
		}
		m[name] = append(m[name], u)
	}
	return m, nil
}

// checkInitialCluster checks the members in name order, so that the same
// mistake always gets the same message.
func checkInitialCluster(m map[string][]string) error {
	if len(m) == 0 {
		return errors.New("must name at least one member")
	}
	owner := map[string]string{}
	for _, name := range sortedKeys(m) {
		if err := checkName(name); err != nil {
			return fmt.Errorf("member name %w", err)
		}
		if len(m[name]) == 0 {
			return fmt.Errorf("member %q has no peer URL", name)
		}
		if err := checkOneScheme(m[name]); err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
		for _, u := range m[name] {
			if err := checkSchemeURL(u, false, peerSchemes); err != nil {
				return fmt.Errorf("member %q: %w", name, err)
			}
			key := strings.ToLower(u)
			if prev, ok := owner[key]; ok && prev == name {
				return fmt.Errorf("member %q lists %q twice", name, u)
			} else if ok {
				return fmt.Errorf("%q is the peer URL of both %q and %q", u, prev, name)
			}
			owner[key] = name
		}
	}
	return nil
}

// parseMs parses a whole number of milliseconds, as etcd's flags take
// them. Bounds are the checks' business; this only keeps the Duration from
// overflowing.
func parseMs(dst *time.Duration, raw string) error {
	ms, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number of milliseconds", raw)
	}
	if ms > uint64(time.Duration(1<<62)/time.Millisecond) {
		return fmt.Errorf("%q milliseconds is out of range", raw)
	}
	*dst = time.Duration(ms) * time.Millisecond
	return nil
}

func checkHeartbeat(d time.Duration) error {
	if d < time.Millisecond {
		return fmt.Errorf("must be >0 (set to %dms)", d.Milliseconds())
	}
	if d > electionTimeoutMaxMs/electionHeartbeatMin*time.Millisecond {
		return fmt.Errorf("%dms is too long: the election timeout must be at least 5 heartbeats and at most %dms",
			d.Milliseconds(), electionTimeoutMaxMs)
	}
	return nil
}

func checkElection(d time.Duration) error {
	if d < time.Millisecond {
		return fmt.Errorf("must be >0 (set to %dms)", d.Milliseconds())
	}
	if d > electionTimeoutMaxMs*time.Millisecond {
		return fmt.Errorf("%dms is too long, and should be set less than %dms", d.Milliseconds(), electionTimeoutMaxMs)
	}
	return nil
}

// parseDuration parses a Go duration (10m, 1m30s, 500ms), as etcd's
// duration flags take them: a bare number other than 0 has no unit and is
// refused.
func parseDuration(dst *time.Duration, raw string) error {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 10m or 500ms", raw)
	}
	*dst = d
	return nil
}

// parseFileDuration parses a duration as etcd's config file gives it, a
// whole number of nanoseconds (600000000000 for 10m), or as a Go duration,
// which etcd's file refuses but which cannot be misread.
func parseFileDuration(dst *time.Duration, raw string) error {
	if ns, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64); err == nil {
		*dst = time.Duration(ns)
		return nil
	}
	if err := parseDuration(dst, raw); err != nil {
		return fmt.Errorf("%q is neither a whole number of nanoseconds nor a duration such as 10m", raw)
	}
	return nil
}

func parseBool(dst *bool, raw string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return fmt.Errorf("%q is not true or false", raw)
	}
	*dst = b
	return nil
}

func parseCount(dst *uint64, raw string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", raw)
	}
	*dst = n
	return nil
}

// checkRange checks min <= n <= max; max 0 means no upper bound.
func checkRange(n, min, max uint64) error {
	if n < min {
		return fmt.Errorf("must be at least %d (set to %d)", min, n)
	}
	if max > 0 && n > max {
		return fmt.Errorf("must be at most %d (set to %d)", max, n)
	}
	return nil
}

func parseQuota(c *Config, raw string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number of bytes", raw)
	}
	c.QuotaBackendBytes = n
	return nil
}

func checkQuota(n int64) error {
	if n < 0 {
		return fmt.Errorf("must not be negative (set to %d); 0 means the default, 2 GiB", n)
	}
	if n > quotaBackendBytesMax {
		return fmt.Errorf("must be at most 100 GiB, %d (set to %d)", int64(quotaBackendBytesMax), n)
	}
	return nil
}

// readFile reads the config file named by path (the config-file setting)
// and takes its settings. It reads at most configFileBytesMax and a byte,
// rather than os.ReadFile's whole file, so that a path to the wrong file
// (a log, /dev/zero) is refused without reading it all.
func (r *resolution) readFile(path settingValue) {
	r.file = map[string]settingValue{}
	f, err := os.Open(path.raw)
	if err != nil {
		r.errs = append(r.errs, path.errorf(ConfigFileFlag, err))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, configFileBytesMax+1))
	if err != nil {
		r.errs = append(r.errs, path.errorf(ConfigFileFlag, err))
		return
	}
	if len(data) > configFileBytesMax {
		r.errs = append(r.errs, path.errorf(ConfigFileFlag,
			fmt.Errorf("%s is larger than 1 MiB; is it the right file?", path.raw)))
		return
	}
	r.parseFile(path.raw, data)
}

// parseFile takes the settings of a config file's contents: one YAML
// document holding a mapping of setting names to values.
func (r *resolution) parseFile(path string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return // an empty file sets nothing
	} else if err != nil {
		r.errs = append(r.errs, yamlError(path, err))
		return
	}
	for { // an empty document, as after a trailing "---", is no document
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			r.errs = append(r.errs, yamlError(path, err))
			return
		}
		if !isNullDocument(&extra) {
			r.errs = append(r.errs, fmt.Errorf("%s:%d: a second YAML document; a config file holds one", path, extra.Line))
			return
		}
	}
	if isNullDocument(&doc) {
		return
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		r.errs = append(r.errs, fmt.Errorf("%s:%d: expected settings, as in \"name: n1\", found %s", path, root.Line, kindName(root)))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		if prev, ok := seen[key.Value]; ok {
			r.errs = append(r.errs, fmt.Errorf("%s:%d: %s is set twice (also at line %d)", path, key.Line, key.Value, prev))
			continue
		}
		seen[key.Value] = key.Line
		r.fileEntry(path, key, val)
	}
}

func isNullDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null"
}

// yamlError puts the YAML library's line number where an editor finds it:
// "yaml: line 3: msg" becomes "path:3: msg".
func yamlError(path string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if line, tail, ok := strings.Cut(rest, ": "); ok {
			return fmt.Errorf("%s:%s: %s", path, line, tail)
		}
	}
	return fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "yaml: "))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

// fileEntry takes one "key: value" of the config file.
func (r *resolution) fileEntry(path string, key, val *yaml.Node) {
	v := settingValue{src: settingSource{kind: fromFile, name: path, line: key.Line}}
	name := key.Value
	switch {
	case key.Kind != yaml.ScalarNode:
		r.errs = append(r.errs, fmt.Errorf("%s:%d: expected a setting name, found %s", path, key.Line, kindName(key)))
	case name == ConfigFileFlag:
		r.errs = append(r.errs, fmt.Errorf("%s:%d: config-file cannot be set inside a config file", path, key.Line))
	case r.file[name].src.kind == fromFile:
		r.errs = append(r.errs, fmt.Errorf("%s:%d: %s is also set at line %d", path, key.Line, name, r.file[name].src.line))
	case name == "client-transport-security" || name == "peer-transport-security":
		r.transportSecurity(v, name, val)
	case isSetting(name) || isEtcdOnly(name):
		raw, err := scalarValue(val, listSetting[name] || isEtcdOnly(name))
		if err != nil {
			r.errs = append(r.errs, v.errorf(name, err))
			return
		}
		v.raw = raw
		if isEtcdOnly(name) {
			r.etcdOnly(name, v)
		} else if raw != "" {
			r.file[name] = v
		}
	default:
		r.errs = append(r.errs, fmt.Errorf("%s:%d: unknown setting %q%s", path, key.Line, name, suggest(name, func(s string) string { return s })))
	}
}

// scalarValue returns a value node's text: "" for null (YAML's "name:"),
// and for a list, when lists are allowed, its items joined with commas as
// the flag would have them.
func scalarValue(n *yaml.Node, list bool) (string, error) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		return "", nil
	case n.Kind == yaml.ScalarNode:
		return n.Value, nil
	case n.Kind == yaml.SequenceNode && list:
		var items []string
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				return "", fmt.Errorf("expected a list of strings, found %s in it (line %d)", kindName(item), item.Line)
			}
			items = append(items, item.Value)
		}
		return strings.Join(items, ","), nil
	case n.Kind == yaml.AliasNode:
		return "", errors.New("YAML aliases are not supported; write the value out")
	}
	return "", fmt.Errorf("expected a single value, found %s", kindName(n))
}

// transportKeys are, for each of etcd's config file blocks
// client-transport-security and peer-transport-security, its fields and
// the settings they set (tls.go), as etcd's securityConfig names them.
var transportKeys = map[string]map[string]string{
	"client-transport-security": {
		"cert-file": "cert-file", "key-file": "key-file", "trusted-ca-file": "trusted-ca-file",
		"client-cert-auth": "client-cert-auth", "auto-tls": "auto-tls",
		"allowed-hostname": "client-cert-allowed-hostname",
		"client-cert-file": "client-cert-file", "client-key-file": "client-key-file",
	},
	"peer-transport-security": {
		"cert-file": "peer-cert-file", "key-file": "peer-key-file", "trusted-ca-file": "peer-trusted-ca-file",
		"client-cert-file": "peer-client-cert-file", "client-key-file": "peer-client-key-file",
		"client-cert-auth": "peer-client-cert-auth", "auto-tls": "peer-auto-tls",
		"allowed-cn": "peer-cert-allowed-cn", "allowed-hostname": "peer-cert-allowed-hostname",
		"skip-client-san-verification": "peer-skip-client-san-verification",
	},
}

// transportSecurity takes one of etcd's client-transport-security and
// peer-transport-security blocks: the fields plumb has set their
// settings; the others (allowed-cn for clients) are
// accepted only when empty or false, as in etcd's sample config file.
func (r *resolution) transportSecurity(v settingValue, name string, val *yaml.Node) {
	if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
		return
	}
	if val.Kind != yaml.MappingNode {
		r.errs = append(r.errs, v.errorf(name, fmt.Errorf("expected a mapping, found %s", kindName(val))))
		return
	}
	for i := 0; i+1 < len(val.Content); i += 2 {
		k, item := val.Content[i], val.Content[i+1]
		raw, err := scalarValue(item, true)
		at := settingValue{raw: raw, src: settingSource{kind: fromFile, name: v.src.name, line: k.Line}}
		if setting, ok := transportKeys[name][k.Value]; ok && err == nil {
			if prev, dup := r.file[setting]; dup && raw != "" {
				err = fmt.Errorf("sets %s, which line %d sets too", setting, prev.src.line)
			} else {
				if raw != "" {
					r.file[setting] = at
				}
				continue
			}
		}
		if err == nil && raw != "" && raw != "false" {
			err = fmt.Errorf("plumb does not support %s in %s yet", k.Value, name)
		}
		if err != nil {
			r.errs = append(r.errs, at.errorf(name+": "+k.Value, err))
		}
	}
}

// etcdSetting is how Resolve treats one of etcd's settings that plumb
// lacks (rule 6).
type etcdSetting struct {
	inert []string // values besides "" that ask for nothing: etcd's default, "off"
	lacks string   // what plumb cannot do, when other values are refused; "" when they are ignored with a warning
	gone  string   // when set, why every value is refused: etcd 3.7 dropped the setting too
}

func refuse(lacks string, inert ...string) etcdSetting { return etcdSetting{inert, lacks, ""} }
func ignore(inert ...string) etcdSetting               { return etcdSetting{inert, "", ""} }
func gone(why string) etcdSetting                      { return etcdSetting{nil, "", why} }

// etcdOnlySettings lists etcd's flags and config file keys (3.7, and a
// few older ones) that plumb does not have, so that etcd's command lines,
// config files and environment files get a precise answer rather than
// "unknown". Other experimental-* keys, all tuning, are ignored with a
// warning by their prefix in the environment and the file.
var etcdOnlySettings = map[string]etcdSetting{
	"wal-dir":                refuse("a separate WAL directory"),
	"enable-v2":              refuse("the v2 API", "false"),
	"v2-deprecation":         ignore(),
	"discovery":              gone(v2DiscoveryGone),
	"discovery-proxy":        gone(v2DiscoveryGone),
	"discovery-fallback":     ignore("exit", "proxy"),
	"proxy":                  refuse("proxy mode", "off"),
	"proxy-failure-wait":     ignore("5000"),
	"proxy-refresh-interval": ignore("30000"),
	"proxy-dial-timeout":     ignore("1000"),
	"proxy-write-timeout":    ignore("5000"),
	"proxy-read-timeout":     ignore("0"),
	"force-new-cluster":      refuse("--force-new-cluster", "false"),
	"unsafe-no-fsync":        ignore("false"),

	"discovery-user":                     refuse("authentication to the discovery cluster"),
	"discovery-password":                 refuse("authentication to the discovery cluster"),
	"discovery-cert":                     refuse("TLS to the discovery cluster"),
	"discovery-key":                      refuse("TLS to the discovery cluster"),
	"discovery-cacert":                   refuse("TLS to the discovery cluster"),
	"discovery-insecure-transport":       refuse("TLS to the discovery cluster", "true"),
	"discovery-insecure-skip-tls-verify": ignore("false"),

	"cors":           ignore("*"),
	"host-whitelist": ignore("*"),

	"enable-log-rotation":               ignore("false"),
	"log-rotation-config-json":          ignore(),
	"disable-log-sampling":              ignore("false"),
	"enable-distributed-tracing":        ignore("false"),
	"distributed-tracing-address":       ignore(),
	"distributed-tracing-service-name":  ignore("etcd"),
	"distributed-tracing-instance-id":   ignore(),
	"distributed-tracing-sampling-rate": ignore("0"),

	"max-snapshots":                        ignore("5"),
	"max-wals":                             ignore("5"),
	"pre-vote":                             ignore("true"),
	"initial-election-tick-advance":        ignore("true"),
	"backend-bbolt-freelist-type":          ignore("map"),
	"backend-batch-interval":               ignore(),
	"backend-batch-limit":                  ignore(),
	"grpc-keepalive-min-time":              ignore(),
	"grpc-keepalive-interval":              ignore(),
	"grpc-keepalive-timeout":               ignore(),
	"socket-reuse-port":                    ignore("false"),
	"socket-reuse-address":                 ignore("false"),
	"max-concurrent-streams":               ignore(),
	"raft-read-timeout":                    ignore(),
	"raft-write-timeout":                   ignore(),
	"corrupt-check-time":                   ignore(),
	"compact-hash-check-time":              ignore(),
	"compaction-batch-limit":               ignore(),
	"compaction-sleep-interval":            ignore(),
	"downgrade-check-time":                 ignore(),
	"warning-unary-request-duration":       ignore(),
	"memory-mlock":                         ignore("false"),
	"bootstrap-defrag-threshold-megabytes": ignore("0"),
	"snapshot-catchup-entries":             ignore(),
}

// etcdOnlyBool holds etcd's switches among etcdOnlySettings: on the
// command line they take no value (--force-new-cluster), as in etcd.
var etcdOnlyBool = map[string]bool{
	"initial-election-tick-advance": true, "socket-reuse-port": true, "socket-reuse-address": true,
	"discovery-insecure-transport": true, "discovery-insecure-skip-tls-verify": true, "pre-vote": true,
	"peer-client-cert-auth": true, "peer-auto-tls": true, "enable-log-rotation": true,
	"enable-distributed-tracing": true, "peer-skip-client-san-verification": true, "force-new-cluster": true,
	"unsafe-no-fsync": true, "memory-mlock": true, "enable-grpc-gateway": true, "enable-v2": true,
	"disable-log-sampling": true,
}

// experimentalRenamed maps etcd 3.6's --experimental-* flags to what etcd
// 3.7 calls them (a flag, or a feature gate); etcd 3.7 refuses the old
// names, and so does plumb's command line, saying the new one.
var experimentalRenamed = map[string]string{
	"experimental-compact-hash-check-enabled":           "--feature-gates=CompactHashCheck=true",
	"experimental-compact-hash-check-time":              "--compact-hash-check-time",
	"experimental-corrupt-check-time":                   "--corrupt-check-time",
	"experimental-initial-corrupt-check":                "--feature-gates=InitialCorruptCheck=true",
	"experimental-enable-lease-checkpoint":              "--feature-gates=LeaseCheckpoint=true",
	"experimental-enable-lease-checkpoint-persist":      "--feature-gates=LeaseCheckpointPersist=true",
	"experimental-stop-grpc-service-on-defrag":          "--feature-gates=StopGRPCServiceOnDefrag=true",
	"experimental-txn-mode-write-with-shared-buffer":    "--feature-gates=TxnModeWriteWithSharedBuffer",
	"experimental-set-member-localaddr":                 "--feature-gates=SetMemberLocalAddr=true",
	"experimental-compaction-batch-limit":               "--compaction-batch-limit",
	"experimental-compaction-sleep-interval":            "--compaction-sleep-interval",
	"experimental-watch-progress-notify-interval":       "--watch-progress-notify-interval",
	"experimental-warning-apply-duration":               "--warning-apply-duration",
	"experimental-warning-unary-request-duration":       "--warning-unary-request-duration",
	"experimental-bootstrap-defrag-threshold-megabytes": "--bootstrap-defrag-threshold-megabytes",
	"experimental-downgrade-check-time":                 "--downgrade-check-time",
	"experimental-memory-mlock":                         "--memory-mlock",
	"experimental-snapshot-catchup-entries":             "--snapshot-catchup-entries",
	"experimental-max-learners":                         "--max-learners",
	"experimental-peer-skip-client-san-verification":    "--peer-skip-client-san-verification",
	"experimental-enable-distributed-tracing":           "--enable-distributed-tracing",
	"experimental-distributed-tracing-address":          "--distributed-tracing-address",
	"experimental-distributed-tracing-service-name":     "--distributed-tracing-service-name",
	"experimental-distributed-tracing-instance-id":      "--distributed-tracing-instance-id",
	"experimental-distributed-tracing-sampling-rate":    "--distributed-tracing-sampling-rate",
	"experimental-backend-bbolt-freelist-type":          "--backend-bbolt-freelist-type",
	"experimental-enable-grpc-gateway":                  "--enable-grpc-gateway",
}

// EtcdFlag is one of etcd's flags that is not among Settings: one of
// etcdOnlySettings (ignored or refused, by rule 6) or a 3.6
// --experimental-* name (refused, naming etcd 3.7's). The command line
// declares them so that etcd's command lines get these answers rather than
// "flag provided but not defined".
type EtcdFlag struct {
	Name    string
	Bool    bool   // a switch: --force-new-cluster takes no value
	Renamed string // etcd 3.7's name for an --experimental-* flag
}

// EtcdFlags lists them by name.
func EtcdFlags() []EtcdFlag {
	var out []EtcdFlag
	for _, name := range sortedKeys(etcdOnlySettings) {
		out = append(out, EtcdFlag{Name: name, Bool: etcdOnlyBool[name]})
	}
	for _, name := range sortedKeys(experimentalRenamed) {
		to := experimentalRenamed[name]
		out = append(out, EtcdFlag{Name: name, Bool: etcdOnlyBool[strings.TrimPrefix(to, "--")], Renamed: to})
	}
	return out
}

func isSetting(name string) bool {
	_, ok := settingFields[name]
	return ok || name == ConfigFileFlag
}

func isEtcdOnly(name string) bool {
	_, ok := etcdOnlySettings[name]
	return ok || strings.HasPrefix(name, "experimental-")
}

// etcdOnly applies rule 6 to a value of one of etcd's settings that plumb
// lacks.
func (r *resolution) etcdOnly(name string, v settingValue) {
	e := etcdOnlySettings[name] // experimental-* is the zero etcdSetting: ignored
	if v.raw == "" || slices.ContainsFunc(e.inert, func(s string) bool { return strings.EqualFold(s, v.raw) }) {
		return
	}
	if to, ok := experimentalRenamed[name]; ok {
		r.warnings = append(r.warnings, v.describe(name, fmt.Sprintf("ignoring %q: etcd 3.7 removed this setting; its name is now %s", v.raw, to)))
		return
	}
	if e.gone != "" {
		r.errs = append(r.errs, errors.New(v.describe(name, fmt.Sprintf("%q: %s", v.raw, e.gone))))
		return
	}
	if e.lacks == "" {
		r.warnings = append(r.warnings, v.describe(name, fmt.Sprintf("ignoring %q: plumb does not support this setting", v.raw)))
		return
	}
	advice := "remove it"
	if len(e.inert) > 0 {
		advice += fmt.Sprintf(" or set it to %q", e.inert[0])
	}
	r.errs = append(r.errs, errors.New(v.describe(name,
		fmt.Sprintf("%q: plumb does not support %s yet; %s", v.raw, e.lacks, advice))))
}

// suggest returns " (did you mean X?)" for the setting nearest to name
// within nameSuggestDistance edits, spelt as the user would write it
// where they wrote name, or "" when none is that near.
func suggest(name string, spell func(setting string) string) string {
	best, bestDist := "", nameSuggestDistance+1
	for _, s := range Settings {
		if d := editDistance(name, s.Name, bestDist); d < bestDist {
			best, bestDist = s.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", spell(best))
}

// editDistance is the Levenshtein distance between a and b, or limit when
// it is at least limit (long names are not worth comparing in full).
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

// envName is the environment variable for a flag: ETCD_INITIAL_CLUSTER.
func envName(prefix, flag string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
