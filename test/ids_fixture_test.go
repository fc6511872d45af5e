package test

import (
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/ids"
	"github.com/vmemtrans/vmemtrans/introspect/kernel"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

func TestFixtureIDSSuite(t *testing.T) {
	f, k := fixtureKernel(t, "linux-6.1-attack", 2)
	base, err := linux.HashText(k)
	if err != nil {
		t.Fatal(err)
	}
	suite := ids.Suite{Baseline: base, Patterns: [][]byte{[]byte("vmt_hideme")}}
	a, err := suite.Run(k, f.img)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.HiddenTasks) != 1 || !strings.HasSuffix(a.HiddenTasks[0], " vmt_hideme") {
		t.Errorf("hidden tasks %v, want the rootkit's vmt_hideme", a.HiddenTasks)
	}
	if len(a.SyscallHooks) != 1 || a.SyscallHooks[0] != "62 rkit" {
		t.Errorf("syscall hooks %v, want 62 rkit", a.SyscallHooks)
	}
	if len(a.ScanMatches) == 0 || len(a.TextChanged) != 0 || len(a.Processes) < 50 {
		t.Errorf("scan %d matches, %d text changes, %d tasks", len(a.ScanMatches), len(a.TextChanged), len(a.Processes))
	}
	if d := a.Diff(a); d != "" {
		t.Errorf("answers differ from themselves: %s", d)
	}

	// A guest whose task list cannot be read past pid 1 is "could not check", never
	// a clean answer.
	tasks, err := linux.Tasks(k, linux.Options{})
	if err != nil || len(tasks) < 2 || tasks[1].PID != 1 {
		t.Fatalf("tasks: %v", err)
	}
	pid1 := uint64(tasks[1].Addr)
	tasksOff, err := k.Offset("task_struct", "tasks")
	if err != nil {
		t.Fatal(err)
	}
	pa, err := k.Translator().TranslateOne(pid1 + tasksOff)
	if err != nil {
		t.Fatal(err)
	}
	faulty := physmemtest.FailPages(f.img, pa)
	kf, err := kernel.New(faulty, k.Profile(), kernel.Options{CR3: k.CR3()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (ids.Suite{}).Run(kf, faulty); err == nil || !strings.Contains(err.Error(), "ps") {
		t.Errorf("suite with init_task unreadable: err %v, want ps could not check", err)
	}
}
