package plumb_test

import (
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
	case (dir == "faults" || dir == "linearizability") && project:
		return dir + " imports nothing from the project"
	case under(dir, "node"):
		return nodeRule(dir, imp, project, rel)
	case dir == "server" && project && !under(rel, "node"):
		return "server imports only node/... from the project (it is the production driver of the node, not of the simulator)"
	case dir == "e2e" && project && rel != "linearizability":
		return "e2e tests the binary from outside; it imports only linearizability, to check histories"
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
	case project && !under(rel, "node"):
		return "node/... imports only node/..."
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
// the global math/rand. (Map order reaching an output cannot be seen from
// syntax; TestSameHashInAnotherProcess and the wasm cross-check catch it.)
func TestDeterminismContract(t *testing.T) {
	banned := []string{"Now", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker", "Since", "Until"}
	for dir, files := range pkgFiles(t) {
		if !under(dir, "node") && !under(dir, "sim") {
			continue
		}
		for _, f := range files {
			name := f.path
			if slices.Contains(imports(f.ast), "math/rand") {
				t.Errorf("%s imports math/rand: use a seeded math/rand/v2 source handed in", name)
			}
			ast.Inspect(f.ast, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s starts a goroutine", name)
				case *ast.SelectStmt:
					t.Errorf("%s uses select", name)
				case *ast.ChanType:
					t.Errorf("%s uses a channel", name)
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && slices.Contains(banned, n.Sel.Name) {
						t.Errorf("%s calls time.%s: time is handed in by the driver", name, n.Sel.Name)
					}
				}
				return true
			})
		}
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
