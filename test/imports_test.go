package test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The dependency direction of DESIGN.md, checked on every package's
// dependencies inside the module: what it imports (test files included,
// under every build tag set that selects other files) and, transitively,
// what those import. Each top-level package may depend only on the prefixes
// listed; a prefix matches itself and everything under it. internal/ is
// open to everyone, so what internal/ may depend on is bounded too, and the
// transitive check catches a path through it (introspect -> internal/x ->
// fabric). A package takes the rule of the longest key it falls under; a
// new top-level package needs a rule here.
var importRules = map[string][]string{
	"introspect":    {"introspect", "internal"},
	"internal":      {"internal", "fabric", "introspect"},
	"internal/demo": nil, // the whole system in one process, for cmd
	"fabric":        {"fabric", "internal", "introspect/physmem"},
	"rdma":          {"rdma", "fabric", "internal", "introspect"},
	"tcpfallback":   {"tcpfallback", "fabric", "internal", "introspect"},
	"kvmhost":       {"kvmhost", "fabric", "internal", "introspect"},
	"cmd":           nil, // anything
	"test":          nil, // anything
}

// testImportExtra is what a package's own test files may import beyond
// its rule: the split-memory runtime's tests run it against a real sub-host
// transport, which production kvmhost code never dials itself.
var testImportExtra = map[string][]string{
	"kvmhost": {"tcpfallback", "rdma"},
}

// ruleOf is the key of importRules a package falls under, "" if none.
func ruleOf(pkg string) string {
	best := ""
	for k := range importRules {
		if (pkg == k || strings.HasPrefix(pkg, k+"/")) && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// importTags are the build tag sets whose files are checked.
var importTags = []string{"", "rdma"}

const modulePath = "github.com/vmemtrans/vmemtrans"

// importViolations lists every dependency against importRules in the module
// rooted at dir.
func importViolations(dir string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	report := func(v string) {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, tags := range importTags {
		cmd := exec.Command("go", "list", "-e", "-tags", tags, "-f",
			`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}|{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
			"./...")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		list, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list in %s: %w: %s", dir, err, stderr.Bytes())
		}
		imports := map[string][]string{}     // package -> module packages it imports
		testImports := map[string][]string{} // the same for its test files
		var pkgs []string
		sc := bufio.NewScanner(bytes.NewReader(list))
		for sc.Scan() {
			main, tests, _ := strings.Cut(sc.Text(), "|")
			fields := strings.Fields(main)
			if len(fields) == 0 {
				continue
			}
			pkg, ok := inModule(fields[0])
			if !ok {
				continue
			}
			pkgs = append(pkgs, pkg)
			imports[pkg] = modulePkgs(fields[1:])
			testImports[pkg] = modulePkgs(strings.Fields(tests))
		}
		for _, pkg := range pkgs {
			top := ruleOf(pkg)
			if top == "" {
				first, _, _ := strings.Cut(pkg, "/")
				report(fmt.Sprintf("%s: top-level package %q has no import rule (add one to importRules and DESIGN.md)", pkg, first))
				continue
			}
			allowed := importRules[top]
			if allowed == nil {
				continue
			}
			// Breadth-first over the dependencies, remembering through which
			// direct import each was reached.
			via := map[string]string{}
			var queue []string
			for _, d := range imports[pkg] {
				if _, ok := via[d]; !ok && d != pkg {
					via[d] = ""
					queue = append(queue, d)
				}
			}
			for _, d := range testImports[pkg] {
				if _, ok := via[d]; !ok && d != pkg && !matchesAny(d, testImportExtra[top]) {
					via[d] = ""
					queue = append(queue, d)
				}
			}
			for len(queue) > 0 {
				d := queue[0]
				queue = queue[1:]
				for _, next := range imports[d] {
					if _, ok := via[next]; !ok && next != pkg {
						if via[next] = via[d]; via[next] == "" {
							via[next] = d
						}
						queue = append(queue, next)
					}
				}
			}
			for d, through := range via {
				if matchesAny(d, allowed) {
					continue
				}
				v := fmt.Sprintf("%s imports %s", pkg, d)
				if through != "" {
					v += " (through " + through + ")"
				}
				report(fmt.Sprintf("%s: %s may depend only on %v of this module", v, top, allowed))
			}
		}
	}
	return out, nil
}

// modulePkgs keeps the import paths inside the module, made relative.
func modulePkgs(paths []string) []string {
	var out []string
	for _, p := range paths {
		if rel, ok := inModule(p); ok {
			out = append(out, rel)
		}
	}
	return out
}

func inModule(path string) (string, bool) {
	if path == modulePath {
		return "", true
	}
	return strings.CutPrefix(path, modulePath+"/")
}

func matchesAny(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// TestImportDirection fails when a package of this module imports against
// DESIGN.md's dependency direction (make lint runs it).
func TestImportDirection(t *testing.T) {
	bad, err := importViolations("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range bad {
		t.Error(v)
	}
}

// TestImportDirectionCatches runs the check on a scratch module with the
// same path holding forbidden imports: it must name each of them, and
// accept the allowed ones.
func TestImportDirectionCatches(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module "+modulePath+"\n\ngo 1.22\n")
	pkg := func(rel string, imports ...string) {
		var b strings.Builder
		fmt.Fprintf(&b, "package %s\n\n", filepath.Base(rel))
		for _, imp := range imports {
			fmt.Fprintf(&b, "import _ %q\n", modulePath+"/"+imp)
		}
		write(filepath.Join(rel, "x.go"), b.String())
	}
	pkg("internal/uffd")
	pkg("internal/bench", "fabric")
	pkg("introspect/physmem", "internal/uffd")
	pkg("introspect/linux", "introspect/physmem", "fabric") // bad
	pkg("introspect/kernel", "internal/bench")              // bad: reaches fabric through internal
	pkg("fabric", "introspect/physmem")
	pkg("fabric/store", "fabric", "tcpfallback") // bad
	pkg("tcpfallback", "fabric")
	pkg("kvmhost", "fabric", "introspect/physmem", "tcpfallback") // bad
	pkg("cmd/vmemtrans", "kvmhost", "tcpfallback", "introspect/linux")
	pkg("tools") // no rule
	// allowed: the demo is the whole system; kvmhost's tests dial a transport
	pkg("internal/demo", "kvmhost", "tcpfallback", "introspect/linux")
	write("kvmhost/x_test.go", "package kvmhost\n\nimport _ \""+modulePath+"/rdma\"\n")
	// a forbidden import only under the rdma tag, and only in a test file
	write("rdma/x.go", "package rdma\n\nimport _ \""+modulePath+"/fabric\"\n")
	write("rdma/tagged.go", "//go:build rdma\n\npackage rdma\n\nimport _ \""+modulePath+"/cmd/vmemtrans\"\n")
	write("internal/uffd/x_test.go", "package uffd\n\nimport _ \""+modulePath+"/tcpfallback\"\n")

	got, err := importViolations(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"introspect/linux imports fabric:",
		"introspect/kernel imports fabric (through internal/bench)",
		"fabric/store imports tcpfallback:",
		"kvmhost imports tcpfallback:",
		`top-level package "tools" has no import rule`,
		"rdma imports cmd/vmemtrans:",
		"rdma imports kvmhost (through cmd/vmemtrans)",
		"rdma imports tcpfallback (through cmd/vmemtrans)",
		"internal/uffd imports tcpfallback:",
	}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("violation %q not reported; got:\n%s", w, joined)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d violations, want %d (allowed imports reported?):\n%s", len(got), len(want), joined)
	}
}
