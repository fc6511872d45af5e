package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
	"github.com/vmemtrans/vmemtrans/introspect/source"
)

func TestExitCode(t *testing.T) {
	failed := errors.New("read failed")
	for _, c := range []struct {
		found bool
		err   error
		want  int
	}{{false, nil, 0}, {false, failed, 1}, {true, nil, 2}, {true, failed, 2}} {
		if got := exitCode(c.found, c.err); got != c.want {
			t.Errorf("exitCode(%v, %v) = %d, want %d", c.found, c.err, got, c.want)
		}
	}
}

// TestChecksCouldNotCheck runs every IDS command on the clean real-guest
// fixture, first as is (exit 0), then with one physical page the command
// depends on failing: the command must exit 1 ("could not check"), never 0.
func TestChecksCouldNotCheck(t *testing.T) {
	dump := "../../test/fixtures/linux-6.1-clean/memory.elf.zst"
	vmlinuz := "../../test/fixtures/linux-6.1-vmlinuz/vmlinuz"
	for _, p := range []string{dump, vmlinuz} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("fixture not present (%v): run make fixtures", err)
		}
	}
	img, err := image.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	// The reader hook of source.Spec: any physmem.Reader, here one that
	// fails chosen pages, with the registers the dump recorded.
	faulty := &physmemtest.Faulty{R: img, Fail: func(uint64) bool { return false }}
	cpu := img.CPUs()[0]
	src, err := source.Open(context.Background(), source.Spec{Reader: faulty, CPU: &cpu, Closer: img, Vmlinuz: vmlinuz})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	k := src.Kernel
	s := &session{target: k}
	ctx := context.Background()
	phys := func(va uint64) uint64 {
		t.Helper()
		pa, err := k.Translator().TranslateOne(va)
		if err != nil {
			t.Fatalf("translate %#x: %v", va, err)
		}
		return pa
	}
	tasks, err := linux.Tasks(k, linux.Options{})
	if err != nil || len(tasks) < 10 {
		t.Fatalf("%d tasks, err %v", len(tasks), err)
	}
	mods, err := linux.Modules(k, linux.Options{})
	if err != nil || len(mods) < 2 {
		t.Fatalf("%d modules, err %v", len(mods), err)
	}
	table, err := k.Symbol("sys_call_table")
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := k.TextRange()
	if err != nil {
		t.Fatal(err)
	}
	baseline := filepath.Join(t.TempDir(), "text.json")
	quiet(t)

	for _, c := range []struct {
		name string
		page uint64 // virtual address whose physical page fails
		run  func() (bool, error)
	}{
		{"ps", uint64(tasks[len(tasks)/2].Addr), func() (bool, error) { return false, runPs(ctx, s, linux.Options{}) }},
		{"lsmod", uint64(mods[1].Addr), func() (bool, error) { return false, runLsmod(ctx, s, linux.Options{}) }},
		{"syscalls", table + 100*8, func() (bool, error) { return checkSyscalls(ctx, s, linux.Options{}) }},
		{"hidden-tasks", uint64(tasks[len(tasks)/2].Addr), func() (bool, error) { return checkHidden(ctx, s, linux.Options{}) }},
		{"kernel-text --record", text + 5*4096, func() (bool, error) { return checkText(s, baseline, "") }},
		// the baseline recorded with page 5 unreadable cannot vouch for it
		{"kernel-text --baseline", 0, func() (bool, error) { return checkText(s, "", baseline) }},
	} {
		faulty.Fail = func(uint64) bool { return false }
		if c.page != 0 {
			if code := exitCode(c.run()); code != 0 {
				t.Errorf("%s on the clean guest: exit %d, want 0", c.name, code)
			}
			pa := phys(c.page)
			faulty.Fail = func(p uint64) bool { return p == pa>>12 }
		}
		found, err := c.run()
		if code := exitCode(found, err); code != 1 {
			t.Errorf("%s with a failed read: exit %d (err %v), want 1", c.name, code, err)
		}
		if c.page != 0 && !faulty.Hit(phys(c.page)) {
			t.Errorf("%s never read the failing page", c.name)
		}
	}
}

// quiet sends the commands' stdout to /dev/null for the test.
func quiet(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = null
	t.Cleanup(func() { os.Stdout = old; null.Close() })
}
