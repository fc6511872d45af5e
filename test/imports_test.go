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

// The dependency direction of DESIGN.md, checked on every package's imports
// (test files included, every build tag set that selects other files).
// Each top-level package may import, inside the module, only the prefixes
// listed; a prefix matches itself and everything under it. Since internal/
// may import only internal/, checking direct imports enforces the direction
// transitively too. A new top-level package needs a rule here.
var importRules = map[string][]string{
	"introspect":  {"introspect", "internal"},
	"internal":    {"internal"},
	"fabric":      {"fabric", "internal", "introspect/physmem"},
	"rdma":        {"rdma", "fabric", "internal", "introspect/physmem"},
	"tcpfallback": {"tcpfallback", "fabric", "internal", "introspect/physmem"},
	"kvmhost":     {"kvmhost", "fabric", "internal", "introspect"},
	"cmd":         nil, // anything
	"test":        nil, // anything
}

// importTags are the build tag sets whose files are checked.
var importTags = []string{"", "rdma"}

const modulePath = "github.com/vmemtrans/vmemtrans"

// importViolations lists every import against importRules in the module
// rooted at dir.
func importViolations(dir string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, tags := range importTags {
		cmd := exec.Command("go", "list", "-e", "-tags", tags, "-f",
			`{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
			"./...")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		list, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go list in %s: %w: %s", dir, err, stderr.Bytes())
		}
		sc := bufio.NewScanner(bytes.NewReader(list))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 {
				continue
			}
			pkg, ok := inModule(fields[0])
			if !ok {
				continue
			}
			top, _, _ := strings.Cut(pkg, "/")
			allowed, ruled := importRules[top]
			if !ruled {
				v := fmt.Sprintf("%s: top-level package %q has no import rule (add one to importRules and DESIGN.md)", pkg, top)
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
				continue
			}
			if allowed == nil {
				continue
			}
			for _, imp := range fields[1:] {
				dep, ok := inModule(imp)
				if !ok || matchesAny(dep, allowed) {
					continue
				}
				v := fmt.Sprintf("%s imports %s: %s may import only %v of this module", pkg, dep, top, allowed)
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	return out, nil
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
	pkg("introspect/physmem", "internal/uffd")
	pkg("introspect/linux", "introspect/physmem", "fabric") // bad
	pkg("fabric", "introspect/physmem")
	pkg("fabric/store", "fabric", "tcpfallback") // bad
	pkg("tcpfallback", "fabric")
	pkg("kvmhost", "fabric", "introspect/physmem", "cmd/vmemtrans") // bad
	pkg("cmd/vmemtrans", "kvmhost", "tcpfallback", "introspect/linux")
	pkg("tools") // no rule
	// a forbidden import only under the rdma tag, and only in a test file
	write("rdma/x.go", "package rdma\n\nimport _ \""+modulePath+"/fabric\"\n")
	write("rdma/tagged.go", "//go:build rdma\n\npackage rdma\n\nimport _ \""+modulePath+"/kvmhost\"\n")
	write("internal/uffd/x_test.go", "package uffd\n\nimport _ \""+modulePath+"/fabric\"\n")

	got, err := importViolations(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"introspect/linux imports fabric",
		"fabric/store imports tcpfallback",
		"kvmhost imports cmd/vmemtrans",
		`top-level package "tools" has no import rule`,
		"rdma imports kvmhost",
		"internal/uffd imports fabric",
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
