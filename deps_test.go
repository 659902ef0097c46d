package plumb_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/plumbdb/plumb"

type goFile struct {
	path string
	ast  *ast.File
}

// pkgFiles parses the non-test Go files of every package in the module.
func pkgFiles(t *testing.T) map[string][]goFile {
	t.Helper()
	fset := token.NewFileSet()
	pkgs := map[string][]goFile{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		pkgs[dir] = append(pkgs[dir], goFile{path: filepath.ToSlash(path), ast: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func imports(f *ast.File) []string {
	var out []string
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		out = append(out, p)
	}
	return out
}

func under(dir, root string) bool { return dir == root || strings.HasPrefix(dir, root+"/") }

// TestImportPolicy enforces DESIGN.md's import rules, like Go's own
// go/build/deps_test.go.
func TestImportPolicy(t *testing.T) {
	pkgs := pkgFiles(t)
	if len(pkgs["node"]) == 0 || len(pkgs["sim"]) == 0 {
		t.Fatalf("found no node or sim package; is the test running at the module root? %v", keys(pkgs))
	}
	for dir, files := range pkgs {
		for _, f := range files {
			for _, imp := range imports(f.ast) {
				if why := forbidden(dir, imp); why != "" {
					t.Errorf("%s imports %s: %s", f.path, imp, why)
				}
			}
		}
	}
}

func forbidden(dir, imp string) string {
	project := strings.HasPrefix(imp, module+"/")
	rel := strings.TrimPrefix(imp, module+"/")
	switch {
	case project && (under(rel, "cmd") || under(rel, "wasm")):
		return "nothing imports cmd or wasm"
	case rel == "internal/dnstest" && project:
		return "only tests import internal/dnstest: it is a fake DNS server, no part of a program"
	case (dir == "faults" || dir == "linearizability" || dir == "internal/plant" || dir == "internal/dnstest") && project:
		return dir + " imports nothing from the project"
	case rel == "internal/plant" && project && !under(dir, "node") && !under(dir, "sim"):
		return "only node/... and sim may plant bugs; production code (server, cmd) reaches them only through the simulator's --plant-bug"
	case under(dir, "node"):
		return nodeRule(dir, imp, project, rel)
	case dir == "server" && project && !under(rel, "node"):
		return "server imports only node/... from the project (it is the production driver of the node, not of the simulator)"
	case dir == "e2e" && project && rel != "linearizability":
		return "e2e tests the binary from outside; it imports only linearizability, to check histories (and its tests internal/dnstest, the DNS they point members at)"
	case under(dir, "sim"):
		if project && (under(rel, "server") || rel == "node/backend/bolt") {
			return "sim never imports the server or bbolt (they do not build for wasm)"
		}
		if imp == "os" || imp == "net" || strings.HasPrefix(imp, "net/") {
			return "sim has no I/O of its own: the simulated world is in memory"
		}
	}
	return ""
}

func nodeRule(dir, imp string, project bool, rel string) string {
	osAllowed := dir == "node/backend/bolt" || dir == "node/wal"
	switch {
	case project && !under(rel, "node") && rel != "internal/plant":
		return "node/... imports only node/... (and internal/plant, the planted bugs' switches)"
	case dir == "node/backend" && project:
		return "node/backend imports nothing from the project"
	case dir == "node/mvcc" && project && rel != "node/backend":
		return "node/mvcc imports only node/backend"
	case strings.HasPrefix(imp, "google.golang.org/grpc"), imp == "net", strings.HasPrefix(imp, "net/"):
		return "node/... does no networking"
	case imp == "os" && !osAllowed:
		return "node/... has no I/O of its own (only node/wal's OS file system and node/backend/bolt may use os)"
	}
	return ""
}

// TestDeterminismContract: code under node/ and sim/ never starts a
// goroutine, uses channels or select, reads the wall clock, sleeps, or uses
// global randomness (math/rand, math/rand/v2's top-level functions,
// crypto/rand). (Map order reaching an output cannot be seen from syntax;
// TestSameHashInAnotherProcess and the wasm cross-check catch it.)
// TestDeterminismRules shows every rule failing on a planted violation.
func TestDeterminismContract(t *testing.T) {
	for dir, files := range pkgFiles(t) {
		if !under(dir, "node") && !under(dir, "sim") {
			continue
		}
		for _, f := range files {
			for _, why := range determinismViolations(dir, f.ast) {
				t.Errorf("%s %s", f.path, why)
			}
		}
	}
}

var (
	// bannedTime are the time package's ways to read the wall clock or wait
	// on it.
	bannedTime = []string{"Now", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker", "Since", "Until"}
	// seededRand is what code may use of math/rand/v2: its types and the
	// constructors of a generator from a seed. Everything else at the
	// package level (IntN, Float64, N, Shuffle, ...) draws from the
	// process's global, randomly seeded generator.
	seededRand = []string{"Rand", "Source", "ChaCha8", "PCG", "Zipf", "New", "NewChaCha8", "NewPCG", "NewZipf"}
)

// raftRandomnessFunc is the one place allowed to touch crypto/rand: in
// package sim, it saves crypto/rand.Reader, points it at the run's seeded
// raft stream (raft draws its election timeouts from it) and restores it.
// It may only read and assign the variable Reader, never draw from it.
const raftRandomnessFunc = "withRaftRandomness"

// determinismViolations returns what in f, a non-test file of the package
// in dir (under node/ or sim/), breaks the determinism contract. It finds
// the packages by import path, whatever name the file gives them.
func determinismViolations(dir string, f *ast.File) []string {
	var out []string
	timeNames := map[string]bool{"time": true}
	randNames, crandNames := map[string]bool{}, map[string]bool{}
	for _, is := range f.Imports {
		path, _ := strconv.Unquote(is.Path.Value)
		name := importName(is, path)
		switch path {
		case "math/rand":
			out = append(out, "imports math/rand: use a seeded math/rand/v2 source handed in")
		case "time":
			timeNames[name] = true
		case "math/rand/v2":
			randNames[name] = true
		case "crypto/rand":
			crandNames[name] = true
			if dir != "sim" {
				out = append(out, "imports crypto/rand: randomness comes from the run's seed; only sim's "+raftRandomnessFunc+" may point crypto/rand.Reader at it")
			}
		default:
			continue
		}
		if name == "." {
			out = append(out, "dot-imports "+path+": its uses could not be checked; import it by name")
		}
	}
	allowedReader := raftReaderUses(dir, f, crandNames)
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			out = append(out, "starts a goroutine")
		case *ast.SelectStmt:
			out = append(out, "uses select")
		case *ast.ChanType:
			out = append(out, "uses a channel")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			switch {
			case !ok:
			case timeNames[id.Name] && slices.Contains(bannedTime, n.Sel.Name):
				out = append(out, fmt.Sprintf("calls time.%s (as %s.%s): time is handed in by the driver", n.Sel.Name, id.Name, n.Sel.Name))
			case randNames[id.Name] && !slices.Contains(seededRand, n.Sel.Name):
				out = append(out, fmt.Sprintf("uses math/rand/v2's global %s (as %s.%s): draw from a seeded *rand.Rand handed in", n.Sel.Name, id.Name, n.Sel.Name))
			case crandNames[id.Name] && !allowedReader[n]:
				out = append(out, fmt.Sprintf("uses crypto/rand.%s: only %s may read and assign crypto/rand.Reader, to point it at the seeded raft stream", n.Sel.Name, raftRandomnessFunc))
			}
		}
		return true
	})
	return out
}

// importName is the name an import is known by in its file.
func importName(is *ast.ImportSpec, path string) string {
	if is.Name != nil {
		return is.Name.Name
	}
	elems := strings.Split(path, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		return elems[len(elems)-2] // math/rand/v2 is rand
	}
	return last
}

// raftReaderUses returns the uses of crypto/rand that the contract allows:
// in package sim, inside raftRandomnessFunc, X.Reader as a whole side of an
// assignment (saved := X.Reader; X.Reader = r; X.Reader = saved).
func raftReaderUses(dir string, f *ast.File, crandNames map[string]bool) map[*ast.SelectorExpr]bool {
	allowed := map[*ast.SelectorExpr]bool{}
	if dir != "sim" {
		return allowed
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name != raftRandomnessFunc || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok {
				return true
			}
			for _, e := range slices.Concat(as.Lhs, as.Rhs) {
				if sel, ok := e.(*ast.SelectorExpr); ok && sel.Sel.Name == "Reader" {
					if id, ok := sel.X.(*ast.Ident); ok && crandNames[id.Name] {
						allowed[sel] = true
					}
				}
			}
			return true
		})
	}
	return allowed
}

// TestDeterminismRules plants one violation of each rule in a small file
// and expects determinismViolations to report it, and shows what stays
// allowed (seeded generators, sim's handling of crypto/rand.Reader).
func TestDeterminismRules(t *testing.T) {
	const withRaftRandomness = `package sim
import (
	crand "crypto/rand"
	"io"
)
func withRaftRandomness(r io.Reader, fn func()) {
	saved := crand.Reader
	crand.Reader = r
	defer func() { crand.Reader = saved }()
	fn()
}`
	for _, c := range []struct {
		name, dir, src string
		want           string // a substring of a violation expected; "" for none at all
	}{
		{"a goroutine", "node", "package node\nfunc f() { go f() }", "starts a goroutine"},
		{"a channel", "sim", "package sim\nvar c chan int", "uses a channel"},
		{"select", "sim", "package sim\nfunc f() { select {} }", "uses select"},
		{"time.Now", "node", "package node\nimport \"time\"\nvar x = time.Now()", "calls time.Now"},
		{"time.Sleep", "node/wal", "package wal\nimport \"time\"\nfunc f() { time.Sleep(1) }", "calls time.Sleep"},
		{"an aliased time", "sim", "package sim\nimport t \"time\"\nvar x = t.Now()", "calls time.Now (as t.Now)"},
		{"an aliased time's timer", "node/mvcc", "package mvcc\nimport clock \"time\"\nvar x = clock.NewTimer(1)", "calls time.NewTimer"},
		{"a dot-imported time", "node", "package node\nimport . \"time\"\nvar x Duration", "dot-imports time"},
		{"math/rand", "node", "package node\nimport \"math/rand\"\nvar x = rand.Intn(2)", "imports math/rand"},
		{"math/rand/v2's global IntN", "sim", "package sim\nimport \"math/rand/v2\"\nvar x = rand.IntN(2)", "global IntN"},
		{"math/rand/v2's global N", "node", "package node\nimport \"math/rand/v2\"\nvar x = rand.N(2)", "global N"},
		{"math/rand/v2's global Shuffle, aliased", "sim", "package sim\nimport r \"math/rand/v2\"\nfunc f() { r.Shuffle(0, nil) }", "global Shuffle (as r.Shuffle)"},
		{"math/rand/v2's global as a value", "sim", "package sim\nimport \"math/rand/v2\"\nvar f = rand.Uint64", "global Uint64"},
		{"a dot-imported math/rand/v2", "sim", "package sim\nimport . \"math/rand/v2\"\nvar x = IntN(2)", "dot-imports math/rand/v2"},
		{"crypto/rand in node", "node", "package node\nimport \"crypto/rand\"\nvar x = rand.Reader", "imports crypto/rand"},
		{"crypto/rand read in sim", "sim", "package sim\nimport \"crypto/rand\"\nfunc f(b []byte) { rand.Read(b) }", "uses crypto/rand.Read"},
		{"crypto/rand.Reader drawn from in sim", "sim", "package sim\nimport (\n\tcrand \"crypto/rand\"\n\t\"io\"\n)\nfunc f(b []byte) { io.ReadFull(crand.Reader, b) }", "uses crypto/rand.Reader"},
		{"crypto/rand.Reader assigned outside " + raftRandomnessFunc, "sim", "package sim\nimport (\n\tcrand \"crypto/rand\"\n\t\"io\"\n)\nfunc other(r io.Reader) { crand.Reader = r }", "uses crypto/rand.Reader"},
		{"crypto/rand drawn from inside " + raftRandomnessFunc, "sim", "package sim\nimport (\n\tcrand \"crypto/rand\"\n\t\"io\"\n)\nfunc withRaftRandomness(r io.Reader, fn func()) { crand.Read(nil); crand.Reader = r; fn() }", "uses crypto/rand.Read"},
		{raftRandomnessFunc + " outside sim", "node", strings.Replace(withRaftRandomness, "package sim", "package node", 1), "imports crypto/rand"},
		{"a blank crypto/rand in node", "node/wal", "package wal\nimport _ \"crypto/rand\"", "imports crypto/rand"},

		{"allowed: sim's " + raftRandomnessFunc, "sim", withRaftRandomness, ""},
		{"allowed: a seeded generator", "sim", "package sim\nimport \"math/rand/v2\"\nvar r = rand.New(rand.NewPCG(1, 2))\nvar x = r.IntN(2)\nfunc f(rng *rand.Rand, s rand.Source) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{}) }", ""},
		{"allowed: time's types and constants", "node", "package node\nimport \"time\"\nvar d time.Duration = time.Second", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := parser.ParseFile(token.NewFileSet(), "x.go", c.src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			got := determinismViolations(c.dir, f)
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("reported %q; want nothing", got)
			case c.want != "" && !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, c.want) }):
				t.Errorf("reported %q; want a violation containing %q", got, c.want)
			}
		})
	}
}

func keys(m map[string][]goFile) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
