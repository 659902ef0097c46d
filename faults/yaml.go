package faults

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// parser turns YAML nodes into a Scenario. It works on yaml.Node rather
// than decoding into structs so that every error can name its line, and so
// that unknown or duplicate keys are errors instead of being ignored.
type parser struct {
	file    string
	lines   int // lines in the file; no error points past the last
	members int // the cluster's size, once parsed, to check member names
	// initial is cluster.members; members counts the members that faults
	// add as well (every name a fault may use).
	initial int
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	return p.errorAt(n.Line, format, args...)
}

func (p *parser) errorAt(line int, format string, args ...any) error {
	// yaml.v3 places an implicit empty value, and some errors at the end of
	// the stream, on the line after the last.
	if p.lines > 0 {
		line = min(line, p.lines)
	}
	return &Error{File: p.file, Line: max(line, 1), Msg: fmt.Sprintf(format, args...)}
}

// document decodes data as exactly one YAML document and returns its root.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	if len(data) > maxFileBytes {
		return nil, p.errorAt(1, "file is %d bytes; a scenario may be at most %d", len(data), maxFileBytes)
	}
	p.lines = lineCount(data)
	if err := p.text(data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := p.decode(data, dec, &doc)
	if errors.Is(err, io.EOF) {
		return nil, p.errorAt(1, "empty file: a scenario needs at least name and duration")
	}
	if err != nil {
		return nil, err
	}
	var next yaml.Node
	if err := p.decode(data, dec, &next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, p.errorf(&next, "a second YAML document: a scenario file holds exactly one")
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, p.errorf(root, "empty file: a scenario needs at least name and duration")
	}
	return root, p.noAliases(root)
}

// decode reads one document. yaml.v3 has panicked on hostile input before
// (CVE-2022-28948), and Parse promises an error, never a panic.
func (p *parser) decode(data []byte, dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = p.errorAt(1, "not valid YAML: %s", show(fmt.Sprint(r)))
		}
	}()
	err = dec.Decode(n)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return p.syntaxError(data, err)
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parserProblems are yaml.v3's parser (not scanner) errors. yaml.v3 reports
// their line 0-based, and leaves it out when it is 0, so Parse adds one.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// syntaxError reshapes yaml.v3's "yaml: line 3: msg" into an *Error with
// the right line.
func (p *parser) syntaxError(data []byte, err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		return p.errorAt(lineOf(data, "*"+m[1]), "alias *%s: aliases are not supported, write the value out", show(m[1]))
	}
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if slices.Contains(parserProblems, msg) {
		line++
	}
	return p.errorAt(line, "not valid YAML: %s", msg)
}

// lineOf returns the 1-based line of the first occurrence of s in data, or
// 1 when s does not occur.
func lineOf(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 1
	}
	return 1 + lineBreaks(data[:i])
}

// lineCount returns the number of lines in data, counting a last line
// without a line break, and at least 1.
func lineCount(data []byte) int {
	n := lineBreaks(data)
	if r, _ := utf8.DecodeLastRune(data); len(data) > 0 && !isBreak(r) {
		n++
	}
	return max(n, 1)
}

// lineBreaks counts line breaks as YAML (and so yaml.v3's line numbers)
// does: "\r\n" is one, and so is each of \r, \n, U+0085, U+2028, U+2029.
func lineBreaks(data []byte) int {
	n := 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if isBreak(r) && !(r == '\r' && i+1 < len(data) && data[i+1] == '\n') {
			n++
		}
		i += size
	}
	return n
}

func isBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029
}

// text rejects what yaml.v3 would reject without a line number: bytes that
// are not UTF-8, and control characters.
func (p *parser) text(data []byte) error {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return p.errorAt(1+lineBreaks(data[:i]), "not valid UTF-8 (a scenario file is UTF-8 text)")
		case !printable(r):
			return p.errorAt(1+lineBreaks(data[:i]), "control character %U is not allowed", r)
		}
		i += size
	}
	return nil
}

// printable is YAML's set of allowed characters, as yaml.v3's reader
// checks it.
func printable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0x7E || r == 0x85 ||
		r >= 0xA0 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// noAliases rejects aliases: a scenario is short enough to write out, and an
// alias would let one node appear in two places with one line number.
func (p *parser) noAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return p.errorf(n, "alias *%s: aliases are not supported, write the value out", n.Value)
	}
	for _, c := range n.Content {
		if err := p.noAliases(c); err != nil {
			return err
		}
	}
	return nil
}

// path names a place in the file for messages: "cluster.members",
// "fault 2", "fault 2: partition.isolate".
type path struct {
	fault int    // 1-based index in the file's fault list; 0 outside it
	field string // dotted field names
}

func (a path) dot(key string) path {
	if a.field != "" {
		key = a.field + "." + key
	}
	return path{fault: a.fault, field: key}
}

func (a path) String() string {
	switch {
	case a.fault == 0:
		return a.field
	case a.field == "":
		return "fault " + strconv.Itoa(a.fault)
	}
	return "fault " + strconv.Itoa(a.fault) + ": " + a.field
}

// prefix is the path followed by ": ", or nothing at the top level.
func (a path) prefix() string {
	if s := a.String(); s != "" {
		return s + ": "
	}
	return ""
}

type pair struct{ key, value *yaml.Node }

// fields is a mapping whose keys are known to be unique names.
type fields struct {
	node  *yaml.Node
	pairs []pair // in file order
}

// get returns the value of key, or nil when the mapping lacks it.
func (f *fields) get(key string) *yaml.Node {
	for _, pr := range f.pairs {
		if pr.key.Value == key {
			return pr.value
		}
	}
	return nil
}

// mapping checks that n is a mapping with unique, plain keys.
func (p *parser) mapping(at path, n *yaml.Node) (*fields, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.typeError(at, n, "a mapping of fields")
	}
	f := &fields{node: n}
	lines := map[string]int{} // key -> line, to find duplicates in linear time
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			return nil, p.errorf(key, "%sa key must be a plain name, got %s", at.prefix(), describe(key))
		}
		if first, ok := lines[key.Value]; ok {
			return nil, p.errorf(key, "%sduplicate field %q (first at line %d)", at.prefix(), clip(key.Value), first)
		}
		lines[key.Value] = key.Line
		f.pairs = append(f.pairs, pair{key, value})
	}
	return f, nil
}

// known rejects the first key, in file order, that is not one of known.
func (p *parser) known(at path, f *fields, known ...string) error {
	for _, pr := range f.pairs {
		if !slices.Contains(known, pr.key.Value) {
			return p.errorf(pr.key, "%sunknown field %q (known: %s)",
				at.prefix(), clip(pr.key.Value), strings.Join(known, ", "))
		}
	}
	return nil
}

// exactlyOne returns the one key of f that is among choices. noun names
// what f is, for the message ("a fault").
func (p *parser) exactlyOne(at path, f *fields, noun string, choices []string) (string, error) {
	var found []*yaml.Node
	for _, pr := range f.pairs {
		if slices.Contains(choices, pr.key.Value) {
			found = append(found, pr.key)
		}
	}
	list := strings.Join(choices, ", ")
	switch len(found) {
	case 0:
		return "", p.errorf(f.node, "%s has none of %s: %s has exactly one", at, list, noun)
	case 1:
		return found[0].Value, nil
	}
	return "", p.errorf(found[1], "%s has both %s and %s: %s has exactly one of %s",
		at, found[0].Value, found[1].Value, noun, list)
}

// sequence checks that n is a list.
func (p *parser) sequence(at path, n *yaml.Node, want string) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.typeError(at, n, want)
	}
	return n.Content, nil
}

// scalar checks that n is a scalar whose resolved tag is one of tags.
func (p *parser) scalar(at path, n *yaml.Node, want string, tags ...string) error {
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		return p.typeError(at, n, want)
	}
	return nil
}

func (p *parser) typeError(at path, n *yaml.Node, want string) error {
	return p.errorf(n, "%sexpected %s, got %s", at.prefix(), want, describe(n))
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "something else"
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "nothing"
	case "!!str":
		return strconv.Quote(clip(n.Value))
	case "!!int", "!!float", "!!bool":
		return show(n.Value)
	default:
		return fmt.Sprintf("%q tagged %s", clip(n.Value), show(tag))
	}
}

// show returns a value for a message as it is when that is unambiguous,
// else quoted, so that an odd value cannot break the message's one line.
func show(s string) string {
	s = clip(s)
	if q := strconv.Quote(s); q[1:len(q)-1] != s || strings.ContainsAny(s, " \"'") {
		return q
	}
	return s
}

// clip shortens a value quoted in a message so that the message stays one
// readable line.
func clip(s string) string {
	const maxRunes = 40
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	return string([]rune(s)[:maxRunes]) + "..."
}
