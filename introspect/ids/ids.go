package ids

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
)

// Answers are the outcomes of every check, sorted.
type Answers struct {
	Processes    []string `json:"processes"`     // "pid tgid ppid uid comm", threads included
	Modules      []string `json:"modules"`       // "name size"
	SyscallHooks []string `json:"syscall_hooks"` // "nr module"
	HiddenTasks  []string `json:"hidden_tasks"`  // "pid comm"
	TextChanged  []string `json:"text_changed"`  // addresses of kernel text pages unlike the baseline
	ScanMatches  []string `json:"scan_matches"`  // "gpa pattern-index"
}

// Suite says what to check.
type Suite struct {
	// Baseline is the kernel text baseline of this boot (HashText on a
	// trusted read); nil skips the kernel-text check.
	Baseline *linux.TextBaseline
	// Patterns are the scan's signatures; none skips the scan.
	Patterns [][]byte
}

// Run runs every check of the suite on t, whose physical memory is r: the
// kernel checks, then the scan.
func (s Suite) Run(t linux.Target, r physmem.Reader) (Answers, error) {
	a, err := s.RunChecks(t)
	var serr error
	a.ScanMatches, serr = s.RunScan(r)
	return a, errors.Join(err, serr)
}

// RunScan runs the whole-memory scan alone (nothing without Patterns).
func (s Suite) RunScan(r physmem.Reader) ([]string, error) {
	if len(s.Patterns) == 0 {
		return nil, nil
	}
	res, err := scan.Memory(r, s.Patterns, scan.Options{})
	var out []string
	if res != nil {
		for _, m := range res.Matches {
			out = append(out, fmt.Sprintf("%#x %d", m.Addr, m.Pattern))
		}
	}
	slices.Sort(out)
	if err != nil {
		return out, fmt.Errorf("scan: %w", err)
	}
	return out, nil
}

// RunChecks runs the kernel checks alone: ps, lsmod, syscalls,
// hidden-tasks and, with a Baseline, kernel-text.
func (s Suite) RunChecks(t linux.Target) (Answers, error) {
	var a Answers
	var errs []error
	fail := func(check string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", check, err))
		}
	}
	tasks, err := linux.Tasks(t, linux.Options{Threads: true})
	fail("ps", err)
	for _, tk := range tasks {
		if tk.Err != nil {
			fail("ps", fmt.Errorf("task %d: %w", tk.PID, tk.Err))
		}
		a.Processes = append(a.Processes, fmt.Sprintf("%d %d %d %d %s", tk.PID, tk.TGID, tk.PPID, tk.UID, tk.Comm))
	}
	mods, err := linux.Modules(t, linux.Options{})
	fail("lsmod", err)
	for _, m := range mods {
		if m.Err != nil {
			fail("lsmod", fmt.Errorf("module %s: %w", m.Name, m.Err))
		}
		a.Modules = append(a.Modules, fmt.Sprintf("%s %d", m.Name, m.Size))
	}
	sys, err := linux.CheckSyscalls(t, linux.Options{})
	fail("check syscalls", err)
	if sys != nil {
		for _, h := range sys.Hooks {
			a.SyscallHooks = append(a.SyscallHooks, fmt.Sprintf("%d %s", h.NR, h.Module))
		}
	}
	hid, err := linux.HiddenTasks(t, linux.Options{})
	fail("check hidden-tasks", err)
	if hid != nil {
		for _, h := range hid.Hidden {
			a.HiddenTasks = append(a.HiddenTasks, fmt.Sprintf("%d %s", h.PID, h.Comm))
		}
	}
	if s.Baseline != nil {
		now, err := linux.HashText(t)
		fail("check kernel-text", err)
		if now != nil {
			changes, err := linux.CompareText(s.Baseline, now)
			fail("check kernel-text", err)
			for _, c := range changes {
				a.TextChanged = append(a.TextChanged, c.Addr.String())
			}
		}
	}
	for _, l := range [][]string{a.Processes, a.Modules, a.SyscallHooks, a.HiddenTasks, a.TextChanged} {
		slices.Sort(l)
	}
	return a, errors.Join(errs...)
}

// Diff describes how b differs from a, check by check; "" when equal.
func (a Answers) Diff(b Answers) string {
	var out string
	for _, c := range []struct {
		name string
		x, y []string
	}{
		{"ps", a.Processes, b.Processes}, {"lsmod", a.Modules, b.Modules},
		{"syscalls", a.SyscallHooks, b.SyscallHooks}, {"hidden-tasks", a.HiddenTasks, b.HiddenTasks},
		{"kernel-text", a.TextChanged, b.TextChanged}, {"scan", a.ScanMatches, b.ScanMatches},
	} {
		if !slices.Equal(c.x, c.y) {
			out += fmt.Sprintf("%s: %d entries vs %d (first difference %s); ", c.name, len(c.x), len(c.y), firstDiff(c.x, c.y))
		}
	}
	return out
}

func firstDiff(x, y []string) string {
	for i := 0; i < max(len(x), len(y)); i++ {
		switch {
		case i >= len(x):
			return fmt.Sprintf("extra %q", y[i])
		case i >= len(y):
			return fmt.Sprintf("missing %q", x[i])
		case x[i] != y[i]:
			return fmt.Sprintf("%q vs %q", x[i], y[i])
		}
	}
	return "none"
}
