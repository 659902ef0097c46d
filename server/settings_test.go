package server

import (
	"bufio"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// defaultConfig is etcd's defaults, written out by hand so that a change
// to Settings' defaults shows up here.
func defaultConfig() Config {
	return Config{
		Name:                     "default",
		DataDir:                  "default.etcd",
		ListenPeerURLs:           []string{"http://localhost:2380"},
		ListenClientURLs:         []string{"http://localhost:2379"},
		AdvertiseClientURLs:      []string{"http://localhost:2379"},
		InitialAdvertisePeerURLs: []string{"http://localhost:2380"},
		InitialCluster:           map[string][]string{"default": {"http://localhost:2380"}},
		InitialClusterState:      ClusterStateNew,
		InitialClusterToken:      "etcd-cluster",
		HeartbeatInterval:        100 * time.Millisecond,
		ElectionTimeout:          1000 * time.Millisecond,
		SnapshotCount:            10000,
		MaxRequestBytes:          1572864,
		MaxTxnOps:                128,
		QuotaBackendBytes:        0,
		AutoCompactionMode:       CompactionModePeriodic,
		TLSMinVersion:            "TLS1.2",
		SelfSignedCertValidity:   1,
		AutoCompactionRetention:  "0",
		LogLevel:                 "info",
		Metrics:                  MetricsBasic,
		Logger:                   LoggerZap,
		LogOutputs:               []string{LogOutputDefault},
		LogFormat:                LogFormatJSON,
		StrictReconfigCheck:      true,
		EnableGRPCGateway:        true,
		MaxLearners:              1,
		AuthToken:                "simple",
		BcryptCost:               10,
		AuthTokenTTL:             300,

		WatchProgressNotifyInterval: 10 * time.Minute,
		WarningApplyDuration:        100 * time.Millisecond,

		DiscoveryDialTimeout:      2 * time.Second,
		DiscoveryRequestTimeout:   5 * time.Second,
		DiscoveryKeepAliveTime:    2 * time.Second,
		DiscoveryKeepAliveTimeout: 6 * time.Second,
	}
}

func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings {
		if seen[s.Name] {
			t.Errorf("setting %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Usage == "" {
			t.Errorf("setting %q has no usage text", s.Name)
		}
		if _, ok := settingFields[s.Name]; !ok && s.Name != ConfigFileFlag {
			t.Errorf("setting %q has no field", s.Name)
		}
		if isEtcdOnly(s.Name) {
			t.Errorf("setting %q is also listed as one plumb lacks", s.Name)
		}
	}
	for name := range settingFields {
		if !seen[name] {
			t.Errorf("field %q is not in Settings", name)
		}
	}
	if last := Settings[len(Settings)-1].Name; last != ConfigFileFlag {
		t.Errorf("the last setting is %q, want %q", last, ConfigFileFlag)
	}
	if _, ok := settingFields[ConfigFileFlag]; ok {
		t.Errorf("%s has a Config field; it is a source, not a setting", ConfigFileFlag)
	}
}

func TestSettingEnvVars(t *testing.T) {
	s := Setting{Name: "initial-cluster-token"}
	want := []string{"PLUMB_INITIAL_CLUSTER_TOKEN", "ETCD_INITIAL_CLUSTER_TOKEN"}
	if got := s.EnvVars(); !slices.Equal(got, want) {
		t.Errorf("EnvVars() = %v, want %v", got, want)
	}
}

func TestResolveDefaults(t *testing.T) {
	c, warnings, err := Resolve(Sources{})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	if want := defaultConfig(); !reflect.DeepEqual(c, want) {
		t.Errorf("Resolve(no sources) =\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the defaults fail Validate: %v", err)
	}
}

// TestComputedDefaultsDescribed keeps the help text of the computed
// defaults true: with nothing set, they come out as Default says.
func TestComputedDefaultsDescribed(t *testing.T) {
	c, _, err := Resolve(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings {
		switch s.Name {
		case "initial-cluster":
			if got, err := ParseInitialCluster(s.Default); err != nil || !reflect.DeepEqual(got, c.InitialCluster) {
				t.Errorf("initial-cluster's Default %q is %v (%v), Resolve gives %v", s.Default, got, err, c.InitialCluster)
			}
		case "data-dir":
			if got := strings.ReplaceAll(s.Default, "${name}", c.Name); got != c.DataDir {
				t.Errorf("data-dir's Default %q says %q, Resolve gives %q", s.Default, got, c.DataDir)
			}
		}
	}
}

// resolveCase is one call of Resolve. file, when set, is written to
// plumb.yaml in a temporary directory and named by fileVia: "" for the
// --config-file flag, or the environment variable to set.
type resolveCase struct {
	name     string
	flags    map[string]string
	env      []string
	file     string
	fileVia  string
	wantErr  []string // substrings of the error; none means success
	exact    bool     // wantErr[0] is the whole error
	wantWarn []string // one substring per warning, all of them
	check    func(t *testing.T, c Config)
}

func (tc resolveCase) run(t *testing.T) {
	t.Helper()
	flags := maps.Clone(tc.flags)
	if flags == nil {
		flags = map[string]string{}
	}
	env := slices.Clone(tc.env)
	if tc.file != "" {
		path := filepath.Join(t.TempDir(), "plumb.yaml")
		if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		if tc.fileVia == "" {
			flags[ConfigFileFlag] = path
		} else {
			env = append(env, tc.fileVia+"="+path)
		}
	}
	c, warnings, err := Resolve(Sources{Flags: flags, Environ: env})
	checkWarnings(t, warnings, tc.wantWarn)
	checkError(t, err, tc.wantErr, tc.exact)
	if err == nil && tc.check != nil {
		tc.check(t, c)
	}
}

func checkError(t *testing.T, err error, want []string, exact bool) {
	t.Helper()
	switch {
	case err == nil && len(want) > 0:
		t.Fatalf("got no error, want one with %q", want)
	case err != nil && len(want) == 0:
		t.Fatalf("unexpected error: %v", err)
	case err != nil && exact && err.Error() != want[0]:
		t.Fatalf("error:\n%s\nwant:\n%s", err, want[0])
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error:\n%s\ndoes not contain %q", err, w)
		}
	}
}

func checkWarnings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("warnings %q, want %d matching %q", got, len(want), want)
		return
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("warning %d is %q, want it to contain %q", i, got[i], w)
		}
	}
}

func wantName(name string) func(*testing.T, Config) {
	return func(t *testing.T, c Config) {
		t.Helper()
		if c.Name != name {
			t.Errorf("Name = %q, want %q", c.Name, name)
		}
	}
}

func TestResolvePrecedence(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "flag", flags: map[string]string{"name": "n1"}, check: wantName("n1")},
		{name: "PLUMB variable", env: []string{"PLUMB_NAME=n1"}, check: wantName("n1")},
		{name: "ETCD variable", env: []string{"ETCD_NAME=n1"}, check: wantName("n1")},
		{name: "file", file: "name: n1\n", check: wantName("n1")},
		{name: "PLUMB and ETCD agree", env: []string{"PLUMB_NAME=n1", "ETCD_NAME=n1"}, check: wantName("n1")},
		{name: "PLUMB and ETCD disagree", env: []string{"PLUMB_NAME=a", "ETCD_NAME=b"}, exact: true,
			wantErr: []string{`--name is set to "a" by PLUMB_NAME and to "b" by ETCD_NAME in the environment; unset one`}},
		{name: "flag and ETCD variable", flags: map[string]string{"name": "a"}, env: []string{"ETCD_NAME=b"}, exact: true,
			wantErr: []string{"--name is set on the command line and by ETCD_NAME in the environment; unset one"}},
		{name: "flag and PLUMB variable", flags: map[string]string{"name": "a"}, env: []string{"PLUMB_NAME=a"}, exact: true,
			wantErr: []string{"--name is set on the command line and by PLUMB_NAME in the environment; unset one"}},
		{name: "flag and both variables", flags: map[string]string{"name": "a"}, env: []string{"PLUMB_NAME=a", "ETCD_NAME=a"}, exact: true,
			wantErr: []string{"--name is set on the command line and by PLUMB_NAME and ETCD_NAME in the environment; keep only one"}},
		{name: "file and flag", file: "name: a\n", flags: map[string]string{"name": "a"},
			wantErr: []string{"--name is set on the command line and in ", "plumb.yaml:1; unset one"}},
		{name: "file and ETCD variable", file: "data-dir: /d\nname: a\n", env: []string{"ETCD_NAME=b"},
			wantErr: []string{"--name is set by ETCD_NAME in the environment and in ", "plumb.yaml:2; unset one"}},
		{name: "flag, variable and file", file: "name: a\n", flags: map[string]string{"name": "b"}, env: []string{"ETCD_NAME=c"},
			wantErr: []string{"--name is set on the command line, by ETCD_NAME in the environment and in ", "plumb.yaml:1; keep only one"}},
		{name: "every conflict is reported", flags: map[string]string{"name": "a", "log-level": "warn"},
			env:     []string{"ETCD_NAME=b", "PLUMB_LOG_LEVEL=debug"},
			wantErr: []string{"--name is set on the command line and by ETCD_NAME", "--log-level is set on the command line and by PLUMB_LOG_LEVEL"}},
		{name: "file errors and conflicts together", file: "name: a\nnmae: b\n", flags: map[string]string{"name": "c"},
			wantErr: []string{`plumb.yaml:2: unknown setting "nmae" (did you mean name?)`, "--name is set on the command line and in "}},
		{name: "places merge", file: "name: n1\n", env: []string{"ETCD_INITIAL_CLUSTER_TOKEN=t1"},
			flags: map[string]string{"log-level": "debug"},
			check: func(t *testing.T, c Config) {
				if c.Name != "n1" || c.InitialClusterToken != "t1" || c.LogLevel != "debug" {
					t.Errorf("got name %q token %q log level %q, want n1, t1, debug", c.Name, c.InitialClusterToken, c.LogLevel)
				}
			}},
		{name: "empty variable is unset", flags: map[string]string{"name": "n1"}, env: []string{"ETCD_NAME="}, check: wantName("n1")},
		{name: "empty flag is unset", flags: map[string]string{"name": ""}, env: []string{"ETCD_NAME=n1"}, check: wantName("n1")},
		{name: "null in the file is unset", file: "name:\n", env: []string{"ETCD_NAME=n1"}, check: wantName("n1")},
		{name: "empty string in the file is unset", file: "name: \"\"\n", flags: map[string]string{"name": "n1"}, check: wantName("n1")},
		{name: "a variable listed twice counts once", env: []string{"ETCD_NAME=a", "ETCD_NAME=b"}, check: wantName("a")},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestResolveConfigFileSource(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "PLUMB_CONFIG_FILE", file: "name: n1\n", fileVia: "PLUMB_CONFIG_FILE", check: wantName("n1")},
		{name: "ETCD_CONFIG_FILE", file: "name: n1\n", fileVia: "ETCD_CONFIG_FILE", check: wantName("n1")},
		{name: "flag and ETCD_CONFIG_FILE", flags: map[string]string{ConfigFileFlag: "a.yaml"}, env: []string{"ETCD_CONFIG_FILE=b.yaml"},
			exact: true, wantErr: []string{"--config-file is set on the command line and by ETCD_CONFIG_FILE in the environment; unset one"}},
		{name: "PLUMB_ and ETCD_CONFIG_FILE disagree", env: []string{"PLUMB_CONFIG_FILE=a.yaml", "ETCD_CONFIG_FILE=b.yaml"},
			exact: true, wantErr: []string{`--config-file is set to "a.yaml" by PLUMB_CONFIG_FILE and to "b.yaml" by ETCD_CONFIG_FILE in the environment; unset one`}},
		{name: "missing file from the flag", flags: map[string]string{ConfigFileFlag: "/nonexistent/plumb.yaml"},
			wantErr: []string{"--config-file: open /nonexistent/plumb.yaml: no such file or directory (from the command line)"}},
		{name: "missing file from the environment", env: []string{"PLUMB_CONFIG_FILE=/nonexistent/plumb.yaml"},
			wantErr: []string{"--config-file: open /nonexistent/plumb.yaml: ", "(from PLUMB_CONFIG_FILE)"}},
		{name: "config-file inside the file", file: "name: n1\nconfig-file: other.yaml\n",
			wantErr: []string{"plumb.yaml:2: config-file cannot be set inside a config file"}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestResolveUnknownNames(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "unknown flag", flags: map[string]string{"namee": "x"}, exact: true,
			wantErr: []string{"unknown flag --namee (did you mean --name?)"}},
		{name: "unknown PLUMB variable near a setting", env: []string{"PLUMB_INITIAL_CLUSTER_TOKN=x"}, exact: true,
			wantErr: []string{"unknown environment variable PLUMB_INITIAL_CLUSTER_TOKN (did you mean PLUMB_INITIAL_CLUSTER_TOKEN?)"}},
		{name: "unknown PLUMB variable", env: []string{"PLUMB_COLOUR=blue"}, exact: true,
			wantErr: []string{"unknown environment variable PLUMB_COLOUR"}},
		{name: "PLUMB variable in lower case", env: []string{"PLUMB_name=n1"}, exact: true,
			wantErr: []string{"unknown environment variable PLUMB_name (did you mean PLUMB_NAME?)"}},
		{name: "etcd's flag as a PLUMB variable", env: []string{"PLUMB_ENABLE_V2=false"}, exact: true,
			wantErr: []string{"unknown environment variable PLUMB_ENABLE_V2: plumb does not support --enable-v2 yet"}},
		{name: "unknown ETCD variable warns", env: []string{"ETCD_VER=v3.5.0"}, check: wantName("default"),
			wantWarn: []string{"ignoring unknown environment variable ETCD_VER"}},
		{name: "misspelt ETCD variable warns with a suggestion", env: []string{"ETCD_INITAL_CLUSTER_TOKEN=t"},
			wantWarn: []string{"ignoring unknown environment variable ETCD_INITAL_CLUSTER_TOKEN (did you mean ETCD_INITIAL_CLUSTER_TOKEN?)"}},
		{name: "ETCDCTL and others are not looked at",
			env:   []string{"ETCDCTL_API=3", "ETCDCTL_ENDPOINTS=http://10.0.0.1:2379", "PLUMBER=1", "PATH=/usr/bin", "HOME=/root", "MALFORMED"},
			check: wantName("default")},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestResolveEtcdOnlyVariables(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "refused", env: []string{"ETCD_FORCE_NEW_CLUSTER=true"},
			wantErr: []string{`--force-new-cluster: "true": plumb does not support --force-new-cluster yet`, "(from ETCD_FORCE_NEW_CLUSTER)"}},
		{name: "peer certificate without its key", env: []string{"ETCD_PEER_CERT_FILE=/etc/ssl/etcd.pem"},
			wantErr: []string{"--peer-cert-file and --peer-key-file must be set together (--peer-cert-file from ETCD_PEER_CERT_FILE)"}},
		{name: "peer TLS from etcd's variables", env: []string{"ETCD_PEER_CERT_FILE=/etc/ssl/p.pem", "ETCD_PEER_KEY_FILE=/etc/ssl/p-key.pem",
			"ETCD_PEER_TRUSTED_CA_FILE=/etc/ssl/ca.pem", "ETCD_PEER_CLIENT_CERT_AUTH=true", "ETCD_PEER_CERT_ALLOWED_CN=etcd-peer,etcd-peer2",
			"ETCD_PEER_CRL_FILE=/etc/ssl/crl.pem", "ETCD_PEER_CLIENT_CERT_FILE=/etc/ssl/pc.pem", "ETCD_PEER_CLIENT_KEY_FILE=/etc/ssl/pc-key.pem",
			"ETCD_LISTEN_PEER_URLS=https://10.0.0.1:2380", "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.1:2380",
			"ETCD_CLIENT_CRL_FILE=/etc/ssl/ccrl.pem", "ETCD_CLIENT_CERT_ALLOWED_HOSTNAME=a.example.com", "ETCD_CLIENT_CERT_AUTH=true", "ETCD_CLIENT_CERT_FILE=/etc/ssl/cc.pem", "ETCD_CLIENT_KEY_FILE=/etc/ssl/cc-key.pem"},
			check: func(t *testing.T, c Config) {
				if c.PeerCertFile != "/etc/ssl/p.pem" || c.PeerKeyFile != "/etc/ssl/p-key.pem" || c.PeerTrustedCAFile != "/etc/ssl/ca.pem" ||
					!c.PeerClientCertAuth || !reflect.DeepEqual(c.PeerCertAllowedCNs, []string{"etcd-peer", "etcd-peer2"}) ||
					c.PeerCRLFile != "/etc/ssl/crl.pem" || c.PeerClientCertFile != "/etc/ssl/pc.pem" || c.PeerClientKeyFile != "/etc/ssl/pc-key.pem" ||
					c.ClientCRLFile != "/etc/ssl/ccrl.pem" || c.ClientCertFile != "/etc/ssl/cc.pem" || c.ClientKeyFile != "/etc/ssl/cc-key.pem" || !reflect.DeepEqual(c.ClientCertAllowedHostnames, []string{"a.example.com"}) {
					t.Errorf("peer TLS from the environment: %+v", c)
				}
			}},
		{name: "v2 discovery refused", env: []string{"ETCD_DISCOVERY=https://discovery.etcd.io/x"},
			wantErr: []string{"the v2 discovery protocol", "etcd 3.7 removed it too", "--discovery-token", "(from ETCD_DISCOVERY)"}},
		{name: "values that ask for nothing", check: wantName("default"),
			env: []string{"ETCD_AUTO_COMPACTION_RETENTION=0", "ETCD_ENABLE_V2=false", "ETCD_MAX_WALS=5", "ETCD_PROXY=off", "ETCD_WAL_DIR="}},
		{name: "tuning warns", env: []string{"ETCD_MAX_WALS=9", "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true"},
			wantWarn: []string{"--experimental-initial-corrupt-check: ignoring",
				`--max-wals: ignoring "9": plumb does not support this setting (from ETCD_MAX_WALS)`}},
		{name: "metrics levels", env: []string{"ETCD_METRICS=extensive", "ETCD_LISTEN_METRICS_URLS=http://127.0.0.1:2381,https://127.0.0.1:2382",
			"ETCD_CERT_FILE=/c.pem", "ETCD_KEY_FILE=/k.pem"},
			check: func(t *testing.T, c Config) {
				if c.Metrics != MetricsExtensive || len(c.ListenMetricsURLs) != 2 {
					t.Errorf("--metrics %q, --listen-metrics-urls %q", c.Metrics, c.ListenMetricsURLs)
				}
			}},
		{name: "metrics level unknown", env: []string{"ETCD_METRICS=full"},
			wantErr: []string{`--metrics: "full"`, "(from ETCD_METRICS)"}},
		{name: "https metrics URL needs the certificate", env: []string{"ETCD_LISTEN_METRICS_URLS=https://127.0.0.1:2382"},
			wantErr: []string{"--listen-metrics-urls", "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2382 with HTTPS scheme"}},
		{name: "pprof is a switch", env: []string{"ETCD_ENABLE_PPROF=true"},
			check: func(t *testing.T, c Config) {
				if !c.EnablePprof {
					t.Error("ETCD_ENABLE_PPROF=true did not enable pprof")
				}
			}},
		{name: "pprof takes a bool", env: []string{"ETCD_ENABLE_PPROF=yes"},
			wantErr: []string{`--enable-pprof: "yes" is not true or false (from ETCD_ENABLE_PPROF)`}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// readEnvFile reads a systemd EnvironmentFile= the way systemd does for
// the simple files etcd's guides use: KEY=value lines, # comments, and
// double quotes around a value.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", path, line)
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		env = append(env, k+"="+v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// TestResolveEtcdEnvFile: an etcd environment file from a static-cluster
// guide works unchanged.
func TestResolveEtcdEnvFile(t *testing.T) {
	env := readEnvFile(t, "testdata/etcd0.env")
	env = append(env, "ETCDCTL_API=3", "PATH=/usr/bin")
	c, warnings, err := Resolve(Sources{Environ: env})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	want := defaultConfig()
	want.Name = "etcd0"
	want.DataDir = "/var/lib/etcd/etcd0"
	want.ListenPeerURLs = []string{"http://0.0.0.0:2380"}
	want.ListenClientURLs = []string{"http://0.0.0.0:2379", "http://0.0.0.0:4001"}
	want.InitialAdvertisePeerURLs = []string{"http://192.168.1.154:2380"}
	want.InitialCluster = map[string][]string{
		"etcd0": {"http://192.168.1.154:2380"},
		"etcd1": {"http://192.168.1.156:2380"},
		"etcd2": {"http://192.168.1.249:2380"},
	}
	want.InitialClusterToken = "mritd-etcd-cluster"
	want.AdvertiseClientURLs = []string{"http://192.168.1.154:2379", "http://192.168.1.154:4001"}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Resolve(etcd0.env) =\n%+v\nwant\n%+v", c, want)
	}
}

// TestResolveEtcdDNSDiscoveryEnv: the same guide's DNS-discovery file
// works once its listen URL is an address (etcd refuses a host name there
// too): the initial cluster is left to the SRV records.
func TestResolveEtcdDNSDiscoveryEnv(t *testing.T) {
	env := []string{"ETCD_NAME=etcd1", "ETCD_LISTEN_PEER_URLS=http://etcd1.mritd.me:2380",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://etcd1.mritd.me:2380", "ETCD_DISCOVERY_SRV=mritd.me"}
	resolveCase{env: env,
		wantErr: []string{`--listen-peer-urls: "http://etcd1.mritd.me:2380": a listen URL's host must be an IP address or "localhost", not a host name (from ETCD_LISTEN_PEER_URLS)`},
	}.run(t)
	env[1] = "ETCD_LISTEN_PEER_URLS=http://192.168.1.154:2380"
	resolveCase{env: env, check: func(t *testing.T, c Config) {
		if c.DiscoverySRV != "mritd.me" || c.InitialCluster != nil {
			t.Errorf("DiscoverySRV %q, InitialCluster %v: want mritd.me and none (the SRV records make it)", c.DiscoverySRV, c.InitialCluster)
		}
	}}.run(t)
}

func TestResolveComputedDefaults(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "from the name", flags: map[string]string{"name": "n1"},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "n1.etcd" {
					t.Errorf("DataDir = %q, want n1.etcd", c.DataDir)
				}
				if want := map[string][]string{"n1": {"http://localhost:2380"}}; !reflect.DeepEqual(c.InitialCluster, want) {
					t.Errorf("InitialCluster = %v, want %v", c.InitialCluster, want)
				}
			}},
		{name: "from the advertised peer URLs",
			flags: map[string]string{"name": "n1", "listen-peer-urls": "http://10.0.0.1:2380,http://10.0.1.1:2380",
				"initial-advertise-peer-urls": "http://10.0.0.1:2380, http://10.0.1.1:2380"},
			check: func(t *testing.T, c Config) {
				want := map[string][]string{"n1": {"http://10.0.0.1:2380", "http://10.0.1.1:2380"}}
				if !reflect.DeepEqual(c.InitialCluster, want) {
					t.Errorf("InitialCluster = %v, want %v", c.InitialCluster, want)
				}
			}},
		{name: "set explicitly, not computed", env: []string{"ETCD_NAME=n1", "ETCD_DATA_DIR=/data",
			"ETCD_INITIAL_CLUSTER=n1=http://localhost:2380,n2=http://10.0.0.2:2380"},
			check: func(t *testing.T, c Config) {
				if c.DataDir != "/data" || len(c.InitialCluster) != 2 {
					t.Errorf("DataDir %q, InitialCluster %v: want /data and two members", c.DataDir, c.InitialCluster)
				}
			}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// valueCase is one bad (or boundary) value of one setting, tried from
// each place.
type valueCase struct {
	setting, raw string
	want         string // the problem, as every place reports it; "" means the value is good
}

var valueCases = []valueCase{
	{"name", "a,b", `"a,b" contains ',' or '='`},
	{"listen-peer-urls", "https://127.0.0.1:2380,http://127.0.0.1:2381", `"https://127.0.0.1:2380" and "http://127.0.0.1:2381": a member's peer URLs must be all http:// or all https://`},
	{"listen-peer-urls", "unixs://peer.sock", `"unixs://peer.sock" must be unix://NAME:PORT, as etcd takes it`},
	{"listen-peer-urls", "unix://n1:2380", ""},
	{"advertise-client-urls", "https://10.0.0.1:2379", ""},
	{"tls-min-version", "TLS1.1", `unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)`},
	{"tls-max-version", "TLS1.3", ""},
	{"cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_NONE", `unexpected TLS cipher suite "TLS_NONE"`},
	{"listen-peer-urls", "http://etcd1.example.com:2380", `"http://etcd1.example.com:2380": a listen URL's host must be an IP address or "localhost"`},
	{"listen-peer-urls", "http://[::1]:2380", ""},
	{"advertise-client-urls", "http://etcd1.example.com:2379", ""},
	{"advertise-client-urls", "http://10.0.0.1", `"http://10.0.0.1" must have a host and a port`},
	{"advertise-client-urls", "http://:2379", `"http://:2379" must have a host and a port`},
	{"advertise-client-urls", "http://10.0.0.1:2379/v3", `"http://10.0.0.1:2379/v3" must not have a path`},
	{"advertise-client-urls", "http://10.0.0.1:2379/", `"http://10.0.0.1:2379/" must not have a path`},
	{"advertise-client-urls", "localhost:2379", `"localhost:2379" must be http://host:port`},
	{"advertise-client-urls", "10.0.0.1:2379", `"10.0.0.1:2379" is not a URL`},
	{"advertise-client-urls", "unixs://etcd.sock", `"unixs://etcd.sock": TLS over a unix socket (unixs://) is not supported yet for client URLs`},
	{"listen-client-urls", "unix://", `"unix://" names no socket file`},
	{"initial-advertise-peer-urls", "unix://etcd.sock", `"unix://etcd.sock" must be unix://NAME:PORT, as etcd takes it`},
	{"advertise-client-urls", "http://10.0.0.1:99999", `"http://10.0.0.1:99999": the port must be a number from 1 to 65535`},
	{"advertise-client-urls", "http://u:p@10.0.0.1:2379", `"http://u:p@10.0.0.1:2379" must be just http://host:port, with no user, query or fragment`},
	{"advertise-client-urls", "http://10.0.0.1:2379,,http://10.0.0.2:2379", `"http://10.0.0.1:2379,,http://10.0.0.2:2379" has an empty entry`},
	{"advertise-client-urls", "http://10.0.0.1:2379,http://10.0.0.1:2379", `"http://10.0.0.1:2379" is listed twice`},
	{"initial-cluster", "default", `"default" is not name=url`},
	{"initial-cluster", "=http://localhost:2380", `"=http://localhost:2380" has no member name before '='`},
	{"initial-cluster", "default=", `"default=" has no URL after '='`},
	{"initial-cluster", "default=http://localhost:2380,n2=http://localhost:2380", `"http://localhost:2380" is the peer URL of both "default" and "n2"`},
	{"initial-cluster", "default=https://localhost:2380,default=http://localhost:2381", `member "default": "https://localhost:2380" and "http://localhost:2381": a member's peer URLs must be all http:// or all https://`},
	{"initial-cluster-state", "old", `"old" is not one of new, existing`},
	{"heartbeat-interval", "1s", `"1s" is not a whole number of milliseconds`},
	{"heartbeat-interval", "-5", `"-5" is not a whole number of milliseconds`},
	{"heartbeat-interval", "0", `must be >0 (set to 0ms)`},
	{"heartbeat-interval", "20000", `20000ms is too long`},
	{"heartbeat-interval", "99999999999999999999", `"99999999999999999999" is not a whole number of milliseconds`},
	{"heartbeat-interval", "9999999999999", `"9999999999999" milliseconds is out of range`},
	{"heartbeat-interval", "200", ""},
	{"election-timeout", "0", `must be >0 (set to 0ms)`},
	{"election-timeout", "60000", `60000ms is too long, and should be set less than 50000ms`},
	{"election-timeout", "50000", ""},
	{"snapshot-count", "0", `must be at least 1 (set to 0)`},
	{"snapshot-count", "ten", `"ten" is not a whole number`},
	{"snapshot-count", "1", ""},
	{"max-request-bytes", "0", `must be at least 1 (set to 0)`},
	{"max-request-bytes", "67108865", `must be at most 67108864 (set to 67108865)`},
	{"max-request-bytes", "67108864", ""},
	{"max-txn-ops", "0", `must be at least 1 (set to 0)`},
	{"quota-backend-bytes", "-1", `must not be negative (set to -1)`},
	{"quota-backend-bytes", "107374182401", `must be at most 100 GiB`},
	{"quota-backend-bytes", "2GiB", `"2GiB" is not a whole number of bytes`},
	{"log-level", "verbose", `"verbose" is not one of debug, info, warn, error`},
	{"log-level", "debug", ""},
}

// companions are the settings a value needs beside it to be valid (rule
// 8), so that each case tests one thing.
func companions(setting string) map[string]string {
	switch setting {
	case "listen-client-urls":
		return map[string]string{"advertise-client-urls": "http://10.0.0.1:2379"}
	case "listen-peer-urls":
		return map[string]string{"initial-advertise-peer-urls": "http://localhost:2380"}
	}
	return nil
}

func TestResolveValues(t *testing.T) {
	for _, vc := range valueCases {
		env := "ETCD_" + strings.ToUpper(strings.ReplaceAll(vc.setting, "-", "_"))
		places := []struct {
			name    string
			tc      resolveCase
			wantErr []string
		}{
			{"flag", resolveCase{flags: map[string]string{vc.setting: vc.raw}},
				[]string{"--" + vc.setting + ": " + vc.want, "(from the command line)"}},
			{"env", resolveCase{env: []string{env + "=" + vc.raw}},
				[]string{"--" + vc.setting + ": " + vc.want, "(from " + env + ")"}},
			{"file", resolveCase{file: vc.setting + ": " + strconv.Quote(vc.raw) + "\n"},
				[]string{"plumb.yaml:1: " + vc.setting + ": " + vc.want}},
		}
		for _, p := range places {
			t.Run(vc.setting+"="+vc.raw+"/"+p.name, func(t *testing.T) {
				tc := p.tc
				for k, v := range companions(vc.setting) {
					tc.env = append(tc.env, "PLUMB_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))+"="+v)
				}
				if vc.want != "" {
					tc.wantErr = p.wantErr
				}
				if vc.setting == "quota-backend-bytes" && vc.want == "" {
					tc.wantWarn = []string{"above the recommended maximum"}
				}
				tc.run(t)
			})
		}
	}
}

func TestResolveRules(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "election timeout under 5 heartbeats", env: []string{"ETCD_ELECTION_TIMEOUT=400"}, exact: true,
			wantErr: []string{"--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms] " +
				"(--election-timeout from ETCD_ELECTION_TIMEOUT, --heartbeat-interval from the default)"}},
		{name: "election timeout under 5 heartbeats, from the file", file: "heartbeat-interval: 100\nelection-timeout: 499\n",
			wantErr: []string{"--election-timeout[499ms] should be at least as 5 times as --heartbeat-interval[100ms]",
				"--election-timeout from ", "plumb.yaml:2, --heartbeat-interval from ", "plumb.yaml:1)"}},
		{name: "election timeout of exactly 5 heartbeats", flags: map[string]string{"heartbeat-interval": "100", "election-timeout": "500"},
			check: func(t *testing.T, c Config) {
				if c.ElectionTimeout != 500*time.Millisecond || c.HeartbeatInterval != 100*time.Millisecond {
					t.Errorf("election %v heartbeat %v, want 500ms and 100ms", c.ElectionTimeout, c.HeartbeatInterval)
				}
			}},
		{name: "listen client URLs without advertised ones", env: []string{"ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379"}, exact: true,
			wantErr: []string{"--advertise-client-urls is required when --listen-client-urls is set explicitly (--listen-client-urls from ETCD_LISTEN_CLIENT_URLS)"}},
		{name: "listen peer URLs without advertised ones", file: "listen-peer-urls: http://0.0.0.0:2380\n",
			wantErr: []string{"--initial-advertise-peer-urls is required when --listen-peer-urls is set explicitly and --initial-cluster-state is new (--listen-peer-urls from ",
				"plumb.yaml:1)"}},
		{name: "listen peer URLs joining an existing cluster",
			flags: map[string]string{"listen-peer-urls": "http://0.0.0.0:2380", "initial-cluster-state": "existing"},
			check: func(t *testing.T, c Config) {
				if c.InitialClusterState != ClusterStateExisting {
					t.Errorf("InitialClusterState = %q", c.InitialClusterState)
				}
			}},
		{name: "a large quota warns", flags: map[string]string{"quota-backend-bytes": "10737418240"},
			wantWarn: []string{"--quota-backend-bytes: 10737418240 is above the recommended maximum of 8 GiB (from the command line)"}},
		{name: "an HTTP-only client URL", env: []string{"ETCD_LISTEN_CLIENT_HTTP_URLS=http://127.0.0.1:2381, http://10.0.0.1:2381"},
			check: func(t *testing.T, c Config) {
				if !slices.Equal(c.ListenClientHTTPURLs, []string{"http://127.0.0.1:2381", "http://10.0.0.1:2381"}) {
					t.Errorf("ListenClientHTTPURLs = %q", c.ListenClientHTTPURLs)
				}
			}},
		{name: "an HTTP-only client URL on a client URL's address",
			flags: map[string]string{"listen-client-urls": "http://127.0.0.1:2379", "advertise-client-urls": "http://127.0.0.1:2379",
				"listen-client-http-urls": "http://127.0.0.1:2379"},
			wantErr: []string{"cannot bind both --listen-client-urls and --listen-client-http-urls on the same url http://127.0.0.1:2379 " +
				"(--listen-client-urls from the command line, --listen-client-http-urls from the command line)"}},
		{name: "an https:// HTTP-only client URL without certificates", file: "listen-client-http-urls: https://127.0.0.1:2381\n",
			wantErr: []string{"TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2381 with HTTPS scheme (--listen-client-http-urls from "}},
		{name: "an HTTP-only client URL that is not one", flags: map[string]string{"listen-client-http-urls": "127.0.0.1:2381"},
			wantErr: []string{"--listen-client-http-urls: ", "(from the command line)"}},
		{name: "the gateway switched off", env: []string{"ETCD_ENABLE_GRPC_GATEWAY=false"},
			check: func(t *testing.T, c Config) {
				if c.EnableGRPCGateway {
					t.Error("ETCD_ENABLE_GRPC_GATEWAY=false left the gateway on")
				}
			}},
		{name: "several problems at once", flags: map[string]string{"snapshot-count": "0", "log-level": "trace"},
			wantErr: []string{"--snapshot-count: must be at least 1", "--log-level: \"trace\" is not one of"}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestResolveConfigFiles(t *testing.T) {
	good := Config{
		Name:                     "n1",
		DataDir:                  "/var/lib/plumb/n1",
		ListenPeerURLs:           []string{"http://10.0.0.1:2380"},
		ListenClientURLs:         []string{"http://10.0.0.1:2379", "http://127.0.0.1:2379"},
		AdvertiseClientURLs:      []string{"http://10.0.0.1:2379"},
		InitialAdvertisePeerURLs: []string{"http://10.0.0.1:2380"},
		InitialCluster: map[string][]string{
			"n1": {"http://10.0.0.1:2380"}, "n2": {"http://10.0.0.2:2380"}, "n3": {"http://10.0.0.3:2380"},
		},
		InitialClusterState:     ClusterStateNew,
		InitialClusterToken:     "prod-1",
		HeartbeatInterval:       200 * time.Millisecond,
		ElectionTimeout:         2000 * time.Millisecond,
		SnapshotCount:           5000,
		MaxRequestBytes:         2097152,
		MaxTxnOps:               256,
		QuotaBackendBytes:       4294967296,
		AutoCompactionMode:      CompactionModePeriodic,
		TLSMinVersion:           "TLS1.2",
		SelfSignedCertValidity:  1,
		AutoCompactionRetention: "0",
		LogLevel:                "warn",
		Metrics:                 MetricsBasic,
		Logger:                  LoggerZap,
		LogOutputs:              []string{LogOutputDefault},
		LogFormat:               LogFormatJSON,
		StrictReconfigCheck:     true,
		EnableGRPCGateway:       true,
		MaxLearners:             1,
		AuthToken:               "simple",
		BcryptCost:              10,
		AuthTokenTTL:            300,

		WatchProgressNotifyInterval: 10 * time.Minute,
		WarningApplyDuration:        100 * time.Millisecond,

		DiscoveryDialTimeout:      2 * time.Second,
		DiscoveryRequestTimeout:   5 * time.Second,
		DiscoveryKeepAliveTime:    2 * time.Second,
		DiscoveryKeepAliveTimeout: 6 * time.Second,
	}
	for _, tc := range []resolveCase{
		{name: "good", flags: map[string]string{ConfigFileFlag: "testdata/good.yaml"},
			check: func(t *testing.T, c Config) {
				if !reflect.DeepEqual(c, good) {
					t.Errorf("Resolve(good.yaml) =\n%+v\nwant\n%+v", c, good)
				}
			}},
		{name: "typo", flags: map[string]string{ConfigFileFlag: "testdata/typo.yaml"}, exact: true,
			wantErr: []string{`testdata/typo.yaml:7: unknown setting "heartbeat-intervall" (did you mean heartbeat-interval?)`}},
		{name: "written for etcd", env: []string{"PLUMB_CONFIG_FILE=testdata/etcd-style.yaml"},
			check: func(t *testing.T, c Config) {
				if c.AutoCompactionMode != CompactionModePeriodic || c.AutoCompactionRetention != "1" {
					t.Errorf("auto-compaction: %q %q, want periodic 1 (an hour) as the file says", c.AutoCompactionMode, c.AutoCompactionRetention)
				}
				if want := []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}; !reflect.DeepEqual(c.CipherSuites, want) ||
					c.TLSMinVersion != "TLS1.2" || c.TLSMaxVersion != "TLS1.3" {
					t.Errorf("cipher suites %q, TLS versions %q to %q; want %q, TLS1.2 to TLS1.3", c.CipherSuites, c.TLSMinVersion, c.TLSMaxVersion, want)
				}
			}},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestResolveEtcdStyleFileWithoutCompaction: the file written for etcd
// resolves with automatic compaction off too.
func TestResolveEtcdStyleFileWithoutCompaction(t *testing.T) {
	data, err := os.ReadFile("testdata/etcd-style.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := strings.Replace(string(data), `auto-compaction-retention: "1"`, `auto-compaction-retention: "0"`, 1)
	resolveCase{file: file,
		check: func(t *testing.T, c Config) {
			if c.StrictReconfigCheck {
				t.Error("strict-reconfig-check: false in the file left the check on")
			}
			if !c.EnablePprof {
				t.Error("enable-pprof: true in the file did not enable pprof")
			}
			if c.Name != "infra0" || c.LogLevel != "debug" || c.DataDir != "infra0.etcd" {
				t.Errorf("name %q, log level %q, data dir %q; want infra0, debug, infra0.etcd", c.Name, c.LogLevel, c.DataDir)
			}
		}}.run(t)
}

func TestResolveConfigFileErrors(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "value with its line", file: "name: n1\ndata-dir: /d\nelection-timeout: 1s\n",
			wantErr: []string{`plumb.yaml:3: election-timeout: "1s" is not a whole number of milliseconds`}},
		{name: "a float is not milliseconds", file: "heartbeat-interval: 100.5\n",
			wantErr: []string{`plumb.yaml:1: heartbeat-interval: "100.5" is not a whole number of milliseconds`}},
		{name: "a quoted number is a number", file: "heartbeat-interval: \"200\"\nelection-timeout: '2000'\n",
			check: func(t *testing.T, c Config) {
				if c.HeartbeatInterval != 200*time.Millisecond || c.ElectionTimeout != 2*time.Second {
					t.Errorf("heartbeat %v, election %v", c.HeartbeatInterval, c.ElectionTimeout)
				}
			}},
		{name: "duplicate key", file: "name: a\ndata-dir: /d\nname: b\n",
			wantErr: []string{"plumb.yaml:3: name is set twice (also at line 1)"}},
		{name: "nested mapping", file: "name:\n  first: a\n",
			wantErr: []string{"plumb.yaml:1: name: expected a single value, found a mapping"}},
		{name: "list for a single value", file: "name: [a, b]\n",
			wantErr: []string{"plumb.yaml:1: name: expected a single value, found a list"}},
		{name: "list of lists", file: "listen-client-urls:\n  - [http://127.0.0.1:2379]\n",
			wantErr: []string{"plumb.yaml:1: listen-client-urls: expected a list of strings, found a list in it (line 2)"}},
		{name: "list form of the initial cluster", file: "initial-cluster:\n  - default=http://localhost:2380\n  - n2=http://10.0.0.2:2380\n",
			check: func(t *testing.T, c Config) {
				if len(c.InitialCluster) != 2 || c.InitialCluster["n2"][0] != "http://10.0.0.2:2380" {
					t.Errorf("InitialCluster = %v", c.InitialCluster)
				}
			}},
		{name: "two documents", file: "name: a\n---\nname: b\n",
			wantErr: []string{"plumb.yaml:2: a second YAML document; a config file holds one"}},
		{name: "a trailing document marker", file: "name: a\n---\n", check: wantName("a")},
		{name: "alias", file: "name: &n n1\ndata-dir: *n\n",
			wantErr: []string{"plumb.yaml:2: data-dir: YAML aliases are not supported"}},
		{name: "not a mapping", file: "- name: a\n",
			wantErr: []string{`plumb.yaml:1: expected settings, as in "name: n1", found a list`}},
		{name: "a bare word", file: "hello\n",
			wantErr: []string{`plumb.yaml:1: expected settings, as in "name: n1", found the value "hello"`}},
		{name: "a key that is not a name", file: "? [a, b]\n: c\n",
			wantErr: []string{"plumb.yaml:1: expected a setting name, found a list"}},
		{name: "syntax error", file: "name: a\nlisten-client-urls: [\n",
			wantErr: []string{"plumb.yaml:2: did not find expected node content"}},
		{name: "every bad key is reported", file: "nam: a\ndata-dir: /d\nlog-levle: info\n",
			wantErr: []string{`plumb.yaml:1: unknown setting "nam" (did you mean name?)`,
				`plumb.yaml:3: unknown setting "log-levle" (did you mean log-level?)`}},
		{name: "empty file", file: "\n", check: wantName("default")},
		{name: "only comments", file: "# nothing yet\n", check: wantName("default")},
		{name: "only a document marker", file: "---\n", check: wantName("default")},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestResolveUnknownKeyFarFromAny: no suggestion when nothing is close.
// The file has a temporary path, so the message is checked from its end.
func TestResolveUnknownKeyFarFromAny(t *testing.T) {
	_, _, err := Resolve(Sources{Flags: map[string]string{ConfigFileFlag: writeFile(t, "colour: blue\n")}})
	if err == nil || !strings.HasSuffix(err.Error(), `plumb.yaml:1: unknown setting "colour"`) {
		t.Errorf("error %v, want one ending in plumb.yaml:1: unknown setting \"colour\"", err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plumb.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolveConfigFileSize(t *testing.T) {
	line := "# " + strings.Repeat("x", 1021) + "\n" // 1024 bytes
	atLimit := "name: n1\n" + strings.Repeat(line, configFileBytesMax/len(line)-1)
	atLimit += "#" + strings.Repeat("x", configFileBytesMax-len(atLimit)-2) + "\n"
	if len(atLimit) != configFileBytesMax {
		t.Fatalf("the test file is %d bytes, want %d", len(atLimit), configFileBytesMax)
	}
	resolveCase{file: atLimit, check: wantName("n1")}.run(t)
	resolveCase{file: atLimit + "\n", wantErr: []string{"plumb.yaml is larger than 1 MiB", "(from the command line)"}}.run(t)
}

func TestResolveEtcdOnlyKeys(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "refused", file: "name: n1\nenable-v2: true\n",
			wantErr: []string{`plumb.yaml:2: enable-v2: "true": plumb does not support the v2 API yet; remove it or set it to "false"`}},
		{name: "asks for nothing", file: "enable-v2: false\nwal-dir:\nforce-new-cluster: false\nproxy: 'off'\nlog-outputs: [stderr]\n",
			check: wantName("default")},
		{name: "empty transport security", file: "client-transport-security:\n  cert-file:\n  client-cert-auth: false\npeer-transport-security:\n",
			check: wantName("default")},
		{name: "client TLS in etcd's block", file: "name: n1\nclient-transport-security:\n  cert-file: /etc/ssl/etcd.pem\n  key-file: /etc/ssl/etcd-key.pem\n" +
			"  trusted-ca-file: /etc/ssl/ca.pem\n  client-cert-auth: true\n  auto-tls: false\n",
			check: func(t *testing.T, c Config) {
				if c.CertFile != "/etc/ssl/etcd.pem" || c.KeyFile != "/etc/ssl/etcd-key.pem" || c.TrustedCAFile != "/etc/ssl/ca.pem" || !c.ClientCertAuth || c.AutoTLS {
					t.Errorf("client TLS from the file: %q %q %q %v %v", c.CertFile, c.KeyFile, c.TrustedCAFile, c.ClientCertAuth, c.AutoTLS)
				}
			}},
		{name: "a certificate without its key in etcd's block", file: "name: n1\nclient-transport-security:\n  cert-file: /etc/ssl/etcd.pem\n",
			wantErr: []string{"--cert-file and --key-file must be set together (--cert-file from ", "plumb.yaml:3)"}},
		{name: "a peer certificate without its key in etcd's block", file: "name: n1\npeer-transport-security:\n  cert-file: /etc/ssl/p.pem\n",
			wantErr: []string{"--peer-cert-file and --peer-key-file must be set together (--peer-cert-file from ", "plumb.yaml:3)"}},
		{name: "https peer URLs without a certificate", file: "name: n1\nlisten-peer-urls: https://10.0.0.1:2380\ninitial-advertise-peer-urls: https://10.0.0.1:2380\n",
			wantErr: []string{"TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://10.0.0.1:2380 with HTTPS scheme (--listen-peer-urls from ", "plumb.yaml:2)"}},
		{name: "an allowed CN without a CA in etcd's block", file: "name: n1\npeer-transport-security:\n  allowed-cn: [etcd-peer]\n",
			wantErr: []string{"--peer-cert-allowed-cn checks peer certificates, which are asked for only with --peer-trusted-ca-file or --peer-client-cert-auth; set one of them (--peer-cert-allowed-cn from ", "plumb.yaml:3)"}},
		{name: "peer TLS in etcd's block", file: "name: n1\nlisten-peer-urls: https://10.0.0.1:2380\ninitial-advertise-peer-urls: https://10.0.0.1:2380\n" +
			"peer-transport-security:\n  cert-file: /etc/ssl/p.pem\n  key-file: /etc/ssl/p-key.pem\n  client-cert-file: /etc/ssl/pc.pem\n" +
			"  client-key-file: /etc/ssl/pc-key.pem\n  trusted-ca-file: /etc/ssl/ca.pem\n  client-cert-auth: true\n  auto-tls: false\n" +
			"  allowed-hostname: [a.example.com, b.example.com]\n  skip-client-san-verification: true\n",
			check: func(t *testing.T, c Config) {
				if c.PeerCertFile != "/etc/ssl/p.pem" || c.PeerKeyFile != "/etc/ssl/p-key.pem" || c.PeerClientCertFile != "/etc/ssl/pc.pem" ||
					c.PeerClientKeyFile != "/etc/ssl/pc-key.pem" || c.PeerTrustedCAFile != "/etc/ssl/ca.pem" || !c.PeerClientCertAuth || c.PeerAutoTLS ||
					!reflect.DeepEqual(c.PeerCertAllowedHostnames, []string{"a.example.com", "b.example.com"}) || !c.PeerSkipClientSANVerification {
					t.Errorf("peer TLS from the file: %+v", c)
				}
			}},
		{name: "peer block and flag key both", file: "name: n1\npeer-cert-file: /a.pem\npeer-transport-security:\n  cert-file: /etc/ssl/p.pem\n",
			wantErr: []string{"plumb.yaml:4: peer-transport-security: cert-file: sets peer-cert-file, which line 2 sets too"}},
		{name: "TLS plumb lacks asked for", file: "name: n1\nclient-transport-security:\n  client-crl-file: /etc/ssl/crl.pem\n  allowed-cn: etcd\n",
			wantErr: []string{"plumb.yaml:3: client-transport-security: client-crl-file: plumb does not support client-crl-file in client-transport-security yet",
				"plumb.yaml:4: client-transport-security: allowed-cn: plumb does not support allowed-cn in client-transport-security yet"}},
		{name: "transport security not a mapping", file: "peer-transport-security: on\n",
			wantErr: []string{`plumb.yaml:1: peer-transport-security: expected a mapping, found the value "on"`}},
		{name: "etcd-only key with a mapping", file: "auto-compaction-retention:\n  hours: 1\n",
			wantErr: []string{"plumb.yaml:1: auto-compaction-retention: expected a single value, found a mapping"}},
		{name: "experimental key warns", file: "experimental-initial-corrupt-check: true\n",
			wantWarn: []string{`plumb.yaml:1: experimental-initial-corrupt-check: ignoring "true"`}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestParseInitialCluster(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string][]string
		wantErr string
	}{
		{in: "n1=http://10.0.0.1:2380", want: map[string][]string{"n1": {"http://10.0.0.1:2380"}}},
		{in: "n1=http://10.0.0.1:2380,n1=http://10.0.1.1:2380,n2=http://10.0.0.2:2380",
			want: map[string][]string{"n1": {"http://10.0.0.1:2380", "http://10.0.1.1:2380"}, "n2": {"http://10.0.0.2:2380"}}},
		{in: " n1 = http://10.0.0.1:2380 , n2=http://10.0.0.2:2380 ",
			want: map[string][]string{"n1": {"http://10.0.0.1:2380"}, "n2": {"http://10.0.0.2:2380"}}},
		{in: "", wantErr: `"" has an empty entry`},
		{in: "n1", wantErr: `"n1" is not name=url`},
		{in: "=http://10.0.0.1:2380", wantErr: "has no member name"},
		{in: "n1=", wantErr: "has no URL"},
		{in: "n1=http://10.0.0.1:2380,,n2=http://10.0.0.2:2380", wantErr: "has an empty entry"},
		{in: "n1=http://10.0.0.1:2380,n2=http://10.0.0.1:2380", wantErr: `"http://10.0.0.1:2380" is the peer URL of both "n1" and "n2"`},
		{in: "n1=http://host:2380,n2=http://HOST:2380", wantErr: "is the peer URL of both"},
		{in: "n1=http://10.0.0.1:2380,n1=http://10.0.0.1:2380", wantErr: `member "n1" lists "http://10.0.0.1:2380" twice`},
		{in: "n1=10.0.0.1:2380", wantErr: `member "n1": "10.0.0.1:2380" is not a URL`},
		{in: "n1=https://10.0.0.1:2380", want: map[string][]string{"n1": {"https://10.0.0.1:2380"}}},
		{in: "n1=https://10.0.0.1:2380,n1=http://10.0.0.1:2381", wantErr: "a member's peer URLs must be all http:// or all https://"},
		{in: "n1=http://10.0.0.1:2380/peer", wantErr: "must not have a path"},
	} {
		got, err := ParseInitialCluster(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseInitialCluster(%q): %v", tc.in, err)
		case tc.wantErr == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("ParseInitialCluster(%q) = %v, want %v", tc.in, got, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseInitialCluster(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
		}
	}
}

// peerHTTPS makes the member's peer URLs https://.
func peerHTTPS(c *Config) {
	c.ListenPeerURLs = []string{"https://127.0.0.1:2380"}
	c.InitialAdvertisePeerURLs = []string{"https://127.0.0.1:2380"}
	c.InitialCluster = map[string][]string{c.Name: {"https://127.0.0.1:2380"}}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		want   []string // "" alone means valid
	}{
		{"defaults", func(c *Config) {}, nil},
		{"heartbeat zero", func(c *Config) { c.HeartbeatInterval = 0 }, []string{"--heartbeat-interval: must be >0 (set to 0ms)"}},
		{"heartbeat too long", func(c *Config) { c.HeartbeatInterval = 11 * time.Second }, []string{"--heartbeat-interval: 11000ms is too long"}},
		{"election under 5 heartbeats", func(c *Config) { c.ElectionTimeout = 400 * time.Millisecond },
			[]string{"--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"}},
		{"election too long", func(c *Config) { c.ElectionTimeout = 51 * time.Second },
			[]string{"--election-timeout: 51000ms is too long, and should be set less than 50000ms"}},
		{"no name", func(c *Config) { c.Name = "" }, []string{"--name: must not be empty"}},
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"--data-dir: must not be empty"}},
		{"no listen peer URLs", func(c *Config) { c.ListenPeerURLs = nil }, []string{"--listen-peer-urls: must name at least one URL"}},
		{"listen on a host name", func(c *Config) { c.ListenClientURLs = []string{"http://example.com:2379"} },
			[]string{`--listen-client-urls: "http://example.com:2379": a listen URL's host must be an IP address or "localhost"`}},
		{"advertise peer TLS, listen without", func(c *Config) {
			c.InitialAdvertisePeerURLs, c.PeerCertFile, c.PeerKeyFile = []string{"https://10.0.0.1:2380"}, "/p.pem", "/p-key.pem"
		}, []string{"a member's peer URLs must be all http:// or all https://: it listens on http://localhost:2380 and advertises https://10.0.0.1:2380"}},
		{"https peer URL without a certificate", func(c *Config) { peerHTTPS(c) },
			[]string{"TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:2380 with HTTPS scheme"}},
		{"https peer URL with a certificate", func(c *Config) { peerHTTPS(c); c.PeerCertFile, c.PeerKeyFile = "/p.pem", "/p-key.pem" }, nil},
		{"https peer URL with --peer-auto-tls", func(c *Config) { peerHTTPS(c); c.PeerAutoTLS = true }, nil},
		{"a peer key without its certificate", func(c *Config) { c.PeerKeyFile = "/p-key.pem" },
			[]string{"--peer-cert-file and --peer-key-file must be set together"}},
		{"a peer client certificate without its key", func(c *Config) { c.PeerClientCertFile = "/pc.pem" },
			[]string{"--peer-client-cert-file and --peer-client-key-file must be set together"}},
		{"a client certificate without its key", func(c *Config) { c.ClientKeyFile = "/cc-key.pem" },
			[]string{"--client-cert-file and --client-key-file must be set together"}},
		{"allowed CN without a CA", func(c *Config) { c.PeerCertAllowedCNs = []string{"etcd"} },
			[]string{"--peer-cert-allowed-cn checks peer certificates, which are asked for only with --peer-trusted-ca-file or --peer-client-cert-auth"}},
		{"allowed CN with a CA", func(c *Config) { c.PeerCertAllowedCNs, c.PeerTrustedCAFile = []string{"etcd"}, "/ca.pem" }, nil},
		{"allowed CN and hostname", func(c *Config) {
			c.PeerCertAllowedCNs, c.PeerCertAllowedHostnames, c.PeerClientCertAuth = []string{"etcd"}, []string{"a.example.com"}, true
		}, []string{"--peer-cert-allowed-cn and --peer-cert-allowed-hostname are mutually exclusive"}},
		{"peer CRL without a CA", func(c *Config) { c.PeerCRLFile = "/crl.pem" },
			[]string{"--peer-crl-file checks peer certificates, which are asked for only with --peer-trusted-ca-file or --peer-client-cert-auth"}},
		{"client CRL without a CA", func(c *Config) { c.ClientCRLFile = "/crl.pem" },
			[]string{"--client-crl-file checks client certificates, which are asked for only with --trusted-ca-file or --client-cert-auth"}},
		{"client hostname rule without a CA", func(c *Config) { c.ClientCertAllowedHostnames = []string{"a.example.com"} },
			[]string{"--client-cert-allowed-hostname checks client certificates"}},
		{"https without a certificate", func(c *Config) { c.ListenClientURLs = []string{"https://10.0.0.1:2379"} },
			[]string{"TLS key/cert (--cert-file, --key-file) must be provided for client url https://10.0.0.1:2379 with HTTPS scheme"}},
		{"https with --auto-tls", func(c *Config) { c.ListenClientURLs, c.AutoTLS = []string{"https://10.0.0.1:2379"}, true }, nil},
		{"a key without its certificate", func(c *Config) { c.KeyFile = "/etc/ssl/etcd-key.pem" },
			[]string{"--cert-file and --key-file must be set together"}},
		{"TLS versions crossed", func(c *Config) { c.TLSMinVersion, c.TLSMaxVersion = "TLS1.3", "TLS1.2" },
			[]string{"min version (TLS1.3) is greater than max version (TLS1.2)"}},
		{"cipher suites with TLS 1.3 only", func(c *Config) {
			c.TLSMinVersion, c.CipherSuites = "TLS1.3", []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
		}, []string{"cipher suites cannot be configured when only TLS1.3 is enabled"}},
		{"advertise peer without a port", func(c *Config) { c.InitialAdvertisePeerURLs = []string{"http://10.0.0.1"} },
			[]string{"--initial-advertise-peer-urls: \"http://10.0.0.1\" must have a host and a port"}},
		{"no initial cluster", func(c *Config) { c.InitialCluster = nil }, []string{"--initial-cluster: must name at least one member"}},
		{"member without URLs", func(c *Config) { c.InitialCluster["n2"] = nil }, []string{`--initial-cluster: member "n2" has no peer URL`}},
		{"member without a name", func(c *Config) { c.InitialCluster[""] = []string{"http://10.0.0.2:2380"} },
			[]string{"--initial-cluster: member name must not be empty"}},
		{"bad cluster state", func(c *Config) { c.InitialClusterState = "" }, []string{`--initial-cluster-state: "" is not one of new, existing`}},
		{"snapshot count zero", func(c *Config) { c.SnapshotCount = 0 }, []string{"--snapshot-count: must be at least 1"}},
		{"request too large", func(c *Config) { c.MaxRequestBytes = 64<<20 + 1 }, []string{"--max-request-bytes: must be at most 67108864"}},
		{"no txn ops", func(c *Config) { c.MaxTxnOps = 0 }, []string{"--max-txn-ops: must be at least 1"}},
		{"no learners", func(c *Config) { c.MaxLearners = 0 }, []string{"--max-learners: must be at least 1"}},
		{"negative quota", func(c *Config) { c.QuotaBackendBytes = -1 }, []string{"--quota-backend-bytes: must not be negative"}},
		{"bad log level", func(c *Config) { c.LogLevel = "trace" }, []string{`--log-level: "trace" is not one of debug, info, warn, error`}},
		{"unknown token type", func(c *Config) { c.AuthToken = "oauth" }, []string{`--auth-token: --auth-token "oauth": unknown token type "oauth" (simple or jwt)`}},
		{"token option without a value", func(c *Config) { c.AuthToken = "jwt,sign-method" }, []string{`option "sign-method" is not key=value`}},
		{"bcrypt cost too low", func(c *Config) { c.BcryptCost = 3 }, []string{"--bcrypt-cost: must be at least 4 (set to 3)"}},
		{"bcrypt cost too high", func(c *Config) { c.BcryptCost = 32 }, []string{"--bcrypt-cost: must be at most 31 (set to 32)"}},
		{"several at once", func(c *Config) { c.Name = ""; c.MaxTxnOps = 0 },
			[]string{"--name: must not be empty", "--max-txn-ops: must be at least 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig()
			tc.modify(&c)
			checkError(t, c.Validate(), tc.want, false)
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"name", "name", 0},
		{"nam", "name", 1},
		{"heartbeat-intervall", "heartbeat-interval", 1},
		{"log-levle", "log-level", 2},
		{"colour", "name", 3}, // at the limit of 3
		{"a-very-long-name-indeed", "name", 3},
	} {
		if got := editDistance(tc.a, tc.b, 3); got != tc.want {
			t.Errorf("editDistance(%q, %q, 3) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
