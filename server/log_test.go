package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoggerJSONIsEtcds: a JSON line has etcd's keys: "level" in lower
// case, "ts" in UTC with microseconds, "msg", then the fields.
func TestLoggerJSONIsEtcds(t *testing.T) {
	var stderr bytes.Buffer
	l, closeLog, err := NewLogger(LogOptions{Level: "info", Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	l.Warn("disk is slow", "took", time.Second)
	l.Debug("not shown")
	var line map[string]any
	if err := json.Unmarshal(stderr.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q", stderr.String())
	}
	if line["level"] != "warn" || line["msg"] != "disk is slow" || line["took"] == nil {
		t.Errorf("line %v", line)
	}
	if _, err := time.Parse(logTimeLayout, line["ts"].(string)); err != nil || !strings.HasSuffix(line["ts"].(string), "Z") {
		t.Errorf("ts %v: want UTC with microseconds (%v)", line["ts"], err)
	}
	if _, ok := line["time"]; ok {
		t.Errorf("slog's own time key is there too: %v", line)
	}
}

// TestLoggerConsoleAndOutputs: --log-format console writes etcd's layout
// (tab-separated time, level, message, then the fields as JSON), and
// --log-outputs writes every line to each output: stdout, stderr and a
// file, appended to.
func TestLoggerConsoleAndOutputs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	file := filepath.Join(t.TempDir(), "member.log")
	if err := os.WriteFile(file, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, closeLog, err := NewLogger(LogOptions{Level: "debug", Format: LogFormatConsole,
		Outputs: []string{LogOutputStdout, LogOutputDefault, file}, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	l.With("member", "8e9e05c52164694d").Debug("ready", "n", 3, "err", errors.New("none"))
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "file": strings.TrimPrefix(string(b), "earlier\n")} {
		parts := strings.Split(strings.TrimSuffix(got, "\n"), "\t")
		if len(parts) != 4 || parts[1] != "debug" || parts[2] != "ready" ||
			parts[3] != `{"member": "8e9e05c52164694d", "n": 3, "err": "none"}` {
			t.Errorf("%s: %q", name, got)
			continue
		}
		if _, err := time.Parse(logTimeLayout, parts[0]); err != nil {
			t.Errorf("%s: time %q: %v", name, parts[0], err)
		}
	}
}

// TestLogSettingsAsEtcd: --logger, --log-outputs and --log-format take
// what etcd 3.7 takes and refuse the rest with etcd's words.
func TestLogSettingsAsEtcd(t *testing.T) {
	for _, tc := range []resolveCase{
		{name: "etcd's values", flags: map[string]string{"logger": "zap", "log-outputs": "stderr,stdout", "log-format": "console"},
			check: func(t *testing.T, c Config) {
				if c.Logger != LoggerZap || strings.Join(c.LogOutputs, ",") != "stderr,stdout" || c.LogFormat != LogFormatConsole {
					t.Errorf("%q %q %q", c.Logger, c.LogOutputs, c.LogFormat)
				}
			}},
		{name: "capnslog", env: []string{"ETCD_LOGGER=capnslog"},
			wantErr: []string{"--logger: ", "--logger=capnslog is removed in v3.5", "(from ETCD_LOGGER)"}},
		{name: "unknown logger", flags: map[string]string{"logger": "glog"},
			wantErr: []string{`--logger: `, `unknown logger option "glog"`}},
		{name: "unknown format", flags: map[string]string{"log-format": "xml"},
			wantErr: []string{"--log-format: ", "unknown log format: xml, supported values json, console"}},
		{name: "journal with another output", flags: map[string]string{"log-outputs": "systemd/journal,stderr"},
			wantErr: []string{"--log-outputs: ", "running with systemd/journal but other '--log-outputs' values"}},
	} {
		t.Run(tc.name, tc.run)
	}
}
