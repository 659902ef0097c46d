package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// Logging, as etcd's zap logger logs: JSON lines with etcd's keys
// ({"level":"info","ts":"2026-01-02T15:04:05.000000Z","msg":...}) or, with
// --log-format console, etcd's console layout (ts, level and message
// separated by tabs, then the fields as JSON); to --log-outputs: stderr
// (default), stdout, files (appended to) or systemd/journal (each line
// sent with its level's priority, as etcd's journal writer does).

// The --logger, --log-outputs and --log-format values etcd takes.
const (
	LoggerZap        = "zap"
	loggerCapnslog   = "capnslog"
	LogOutputDefault = "default"
	LogOutputStderr  = "stderr"
	LogOutputStdout  = "stdout"
	LogOutputJournal = "systemd/journal"
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// logTimeLayout is zap's ISO 8601 time with microseconds, as etcd's "ts".
const logTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

func checkLogger(s string) error {
	switch s {
	case LoggerZap:
		return nil
	case loggerCapnslog:
		return errors.New("--logger=capnslog is removed in v3.5") // etcd's words
	}
	return fmt.Errorf("unknown logger option %q", s)
}

func checkLogFormat(s string) error {
	if s == LogFormatJSON || s == LogFormatConsole {
		return nil
	}
	return fmt.Errorf("unknown log format: %s, supported values json, console", s)
}

func checkLogOutputs(outs []string) error {
	if len(outs) == 0 {
		return errors.New("must name at least one output")
	}
	if slices.Contains(outs, LogOutputJournal) && len(outs) > 1 {
		return fmt.Errorf("running with systemd/journal but other '--log-outputs' values (%q) are configured with 'default'; override 'default' value with something else", outs)
	}
	return nil
}

// LogOptions are where and how a member logs.
type LogOptions struct {
	Level   string   // debug, info, warn or error
	Format  string   // json (default) or console
	Outputs []string // default/stderr, stdout, a file path, or systemd/journal alone
	// Stderr and Stdout stand for the process's (tests give buffers).
	Stderr, Stdout io.Writer
}

// NewLogger returns the structured logger a member logs with, and a
// function that closes the files it opened.
func NewLogger(o LogOptions) (*slog.Logger, func() error, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(cmpOr(o.Level, "info")))); err != nil {
		return nil, nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", o.Level)
	}
	format := cmpOr(o.Format, LogFormatJSON)
	if err := checkLogFormat(format); err != nil {
		return nil, nil, fmt.Errorf("--log-format: %w", err)
	}
	outs := o.Outputs
	if len(outs) == 0 {
		outs = []string{LogOutputDefault}
	}
	if err := checkLogOutputs(outs); err != nil {
		return nil, nil, fmt.Errorf("--log-outputs: %w", err)
	}
	var ws []io.Writer
	var files []*os.File
	closeAll := func() error {
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	for _, out := range outs {
		switch out {
		case LogOutputDefault, LogOutputStderr:
			ws = append(ws, o.Stderr)
		case LogOutputStdout:
			ws = append(ws, o.Stdout)
		case LogOutputJournal:
			if !journal.Enabled() {
				return nil, nil, errors.New("--log-outputs: systemd/journal: the journal's socket is not there (is journald running?)")
			}
			ws = append(ws, journalWriter{})
		default:
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("--log-outputs: %w", err)
			}
			files = append(files, f)
			ws = append(ws, f)
		}
	}
	w := ws[0]
	if len(ws) > 1 {
		w = io.MultiWriter(ws...)
	}
	w = &lineWriter{w: w}
	var h slog.Handler
	if format == LogFormatConsole {
		h = &consoleHandler{w: w, level: l}
	} else {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: etcdKeys})
	}
	return slog.New(h), closeAll, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// etcdKeys gives slog's JSON etcd's keys and values: "ts" in UTC with
// microseconds, and the level in lower case.
func etcdKeys(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		return slog.String("ts", a.Value.Time().UTC().Format(logTimeLayout))
	case slog.LevelKey:
		return slog.String("level", levelName(a.Value.Any().(slog.Level)))
	}
	return a
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// lineWriter hands each log line to w in one Write, under a lock, so that
// lines from goroutines never interleave (slog's handlers write a record
// at once; the console handler and the journal rely on it too).
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// journalWriter sends each line to systemd's journal with the priority
// of its level, as etcd's journal writer does.
type journalWriter struct{}

func (journalWriter) Write(p []byte) (int, error) {
	var line struct {
		Level string `json:"level"`
	}
	_ = json.Unmarshal(p, &line) // a console line has no level to read: info
	prio := journal.PriInfo
	switch line.Level {
	case "debug":
		prio = journal.PriDebug
	case "warn":
		prio = journal.PriWarning
	case "error":
		prio = journal.PriErr
	}
	if err := journal.Send(string(p), prio, nil); err != nil {
		return 0, err
	}
	return len(p), nil
}

// consoleHandler writes etcd's console layout: time, level and message
// separated by tabs, then the fields as one JSON object.
type consoleHandler struct {
	w     io.Writer
	level slog.Level
	attrs []slog.Attr
}

func (h *consoleHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *consoleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &consoleHandler{w: h.w, level: h.level, attrs: slices.Concat(h.attrs, as)}
}

// WithGroup is not used by plumb: a group's fields are written flat.
func (h *consoleHandler) WithGroup(string) slog.Handler { return h }

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Time.UTC().Format(logTimeLayout))
	b.WriteByte('\t')
	b.WriteString(levelName(r.Level))
	b.WriteByte('\t')
	b.WriteString(r.Message)
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	if len(attrs) > 0 {
		b.WriteString("\t{")
		for i, a := range attrs {
			if i > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(a.Key)
			v, err := json.Marshal(attrValue(a.Value))
			if err != nil {
				v, _ = json.Marshal(a.Value.String())
			}
			b.Write(k)
			b.WriteString(": ")
			b.Write(v)
		}
		b.WriteByte('}')
	}
	b.WriteByte('\n')
	_, err := h.w.Write(b.Bytes())
	return err
}

func attrValue(v slog.Value) any {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time().UTC().Format(logTimeLayout)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.Any()
}

// raftLogger is raft's Logger over slog, its lines marked "logger":"raft"
// as etcd marks them. raft's Fatal and Panic mean a broken invariant: they
// log, then panic.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) log(level slog.Level, msg string) {
	r.l.Log(context.Background(), level, msg, "logger", "raft")
}

func (r raftLogger) Debug(v ...any) { r.log(slog.LevelDebug, fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) {
	r.log(slog.LevelDebug, fmt.Sprintf(format, v...))
}
func (r raftLogger) Info(v ...any)                 { r.log(slog.LevelInfo, fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any) { r.log(slog.LevelInfo, fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)              { r.log(slog.LevelWarn, fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.log(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any) { r.log(slog.LevelError, fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) {
	r.log(slog.LevelError, fmt.Sprintf(format, v...))
}
func (r raftLogger) Fatal(v ...any)                 { r.die(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) { r.die(fmt.Sprintf(format, v...)) }
func (r raftLogger) Panic(v ...any)                 { r.die(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { r.die(fmt.Sprintf(format, v...)) }

func (r raftLogger) die(msg string) {
	r.log(slog.LevelError, msg)
	panic(msg)
}

// leaderChange is how raft's node logs a change of leader (etcd's lines;
// plumb drives a RawNode, which does not log them itself).
func leaderChange(self, from, to, term uint64) string {
	switch {
	case to == 0:
		return fmt.Sprintf("raft.node: %x lost leader %x at term %d", self, from, term)
	case from == 0:
		return fmt.Sprintf("raft.node: %x elected leader %x at term %d", self, to, term)
	}
	return fmt.Sprintf("raft.node: %x changed leader from %x to %x at term %d", self, from, to, term)
}
