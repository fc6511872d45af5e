package linux

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

// Each IDS check over a fake kernel whose reads fail on chosen pages
// (physmemtest.Faulty): a read the answer depends on that fails must turn
// "clean" into an error ("could not check"), never into a clean answer.

// lonePage returns the address of a fresh page of the fake's data region
// that holds nothing else, so failing it fails only what is moved there.
func (k *fakeKernel) lonePage() uint64 {
	a := k.alloc(2 * 4096)
	pg := (a + 4095) &^ 4095
	k.alloc(4096) // later allocations stay off the page
	return pg
}

// movePid moves the struct pid of task number nr onto its own page and
// points the IDR's slot at the copy.
func (w *world) movePid(nr uint64) uint64 {
	k := w.k
	old := w.pids[nr]
	pg := k.lonePage()
	copy(k.mem[pg-k.base:pg-k.base+128], k.mem[old-k.base:old-k.base+128])
	moved := false
	for off := 0; off+8 <= len(k.mem); off += 8 {
		if le.Uint64(k.mem[off:]) == old {
			le.PutUint64(k.mem[off:], pg)
			moved = true
		}
	}
	if !moved {
		panic("struct pid not found in the IDR")
	}
	w.pids[nr] = pg
	return pg
}

func TestFaultPs(t *testing.T) {
	w := newWorld()
	k := w.k
	cred := k.lonePage()
	k.w32(cred+k.o("cred.uid"), 0)
	k.w64(w.daemon+k.o("task_struct.real_cred"), cred)
	if _, err := Tasks(k, Options{Threads: true}); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	f := physmemtest.FailPages(k.space(), cred)
	k.via = f
	tasks, err := Tasks(k, Options{Threads: true})
	if !errors.Is(err, ErrUnreadable) || !f.Hit(cred) {
		t.Fatalf("daemon's cred unreadable: err %v (page read: %v), want ErrUnreadable", err, f.Hit(cred))
	}
	if !strings.Contains(err.Error(), "1 of 7 tasks incomplete") {
		t.Errorf("err %q does not count the incomplete task", err)
	}
	if len(tasks) != 7 {
		t.Errorf("%d tasks, want all 7 still listed", len(tasks))
	}
	// A task_struct on the list unreadable: the walk stops with an error.
	k.via = physmemtest.FailPages(k.space(), w.sh)
	if _, err := Tasks(k, Options{}); !errors.Is(err, ErrUnreadable) {
		t.Errorf("shell's task_struct unreadable: err %v, want ErrUnreadable", err)
	}
}

func TestFaultLsmod(t *testing.T) {
	k := newFake()
	addrs := k.modules([3]uint64{modText, 0x3000, 0x1000}, [3]uint64{modText + 0x10000, 0x2000, 0x800})
	if mods, err := Modules(k, Options{}); err != nil || len(mods) != 2 {
		t.Fatalf("before the fault: %d modules, err %v", len(mods), err)
	}
	k.via = physmemtest.FailPages(k.space(), addrs[1])
	mods, err := Modules(k, Options{})
	if !errors.Is(err, ErrUnreadable) {
		t.Errorf("second module unreadable: %d modules, err %v; want ErrUnreadable", len(mods), err)
	}
}

func TestFaultSyscalls(t *testing.T) {
	k := newFake()
	tab := k.syscallTable(DefaultSyscalls)
	k.lonePage()
	k.modules([3]uint64{modText, 0x3000, 0x1000})
	if rep, err := CheckSyscalls(k, Options{}); err != nil || len(rep.Hooks) != 0 {
		t.Fatalf("before the fault: %+v, err %v", rep, err)
	}
	// Part of the table unreadable: the entries there are not checked.
	k.via = physmemtest.FailPages(k.space(), tab+400*8)
	rep, err := CheckSyscalls(k, Options{})
	if !errors.Is(err, ErrUnreadable) || len(rep.Hooks) != 0 {
		t.Errorf("table page unreadable: hooks %+v, err %v; want no hooks and ErrUnreadable", rep.Hooks, err)
	}
	// A hook whose owner cannot be named: the module list is unreadable.
	k.via = physmemtest.FailPages(k.space(), k.syms["modules"])
	k.w64(tab+3*8, modText+0x40)
	rep, err = CheckSyscalls(k, Options{})
	if !errors.Is(err, ErrUnreadable) || len(rep.Hooks) != 1 {
		t.Errorf("module list unreadable: hooks %+v, err %v; want the hook and ErrUnreadable", rep.Hooks, err)
	}
}

func TestFaultHiddenTasksConfirm(t *testing.T) {
	w := newWorld()
	w.unlink(w.daemon)
	pid := w.movePid(200)
	rep, err := HiddenTasks(w.k, Options{})
	if err != nil || len(rep.Hidden) != 1 {
		t.Fatalf("before the fault: hidden %+v, err %v", rep, err)
	}
	// The IDR walk reads the daemon's pid; the confirming re-read fails. The
	// candidate is then neither reported nor cleared: the check is incomplete.
	armed := false
	f := &physmemtest.Faulty{R: w.k.space(), Fail: func(p uint64) bool { return armed && p == pid>>12 }}
	w.k.via = f
	calls := w.k.calls
	w.k.onRead = func(call int) { armed = call-calls > 4 }
	rep, err = HiddenTasks(w.k, Options{})
	if !f.Hit(pid) {
		t.Fatal("the confirming read never touched the failing page")
	}
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "confirm") {
		t.Errorf("confirming read failed: hidden %+v, err %v; want an ErrUnreadable naming the confirmation", rep.Hidden, err)
	}
}

func TestFaultHiddenTasksList(t *testing.T) {
	// The task list breaks at kthreadd: the tasks after it are unreached,
	// not hidden. No false alarm, and the check is incomplete.
	w := newWorld()
	w.k.via = physmemtest.FailPages(w.k.space(), w.kthreadd)
	rep, err := HiddenTasks(w.k, Options{})
	if !errors.Is(err, ErrUnreadable) || len(rep.Hidden) != 0 {
		t.Errorf("a listed task unreadable: hidden %+v, err %v; want none and ErrUnreadable", rep.Hidden, err)
	}
}

func TestFaultKernelText(t *testing.T) {
	k := newFake()
	page1 := k.textBase + 4096
	k.via = physmemtest.FailPages(k.space(), page1)
	base, err := HashText(k)
	if !errors.Is(err, ErrUnreadable) || base.Pages[1] != "" {
		t.Fatalf("text page 1 unreadable while recording: err %v", err)
	}
	// Compared later with every page readable: page 1 was never hashed, so
	// it cannot be said to be unchanged.
	k.via = nil
	now, err := HashText(k)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := CompareText(base, now)
	if !errors.Is(err, ErrUnreadable) || len(ch) != 0 {
		t.Errorf("baseline with an unreadable page: changes %+v, err %v; want none and ErrUnreadable", ch, err)
	}
	// Unreadable now: a change, and an error from the hashing.
	good, _ := HashText(k)
	k.via = physmemtest.FailPages(k.space(), page1)
	now, herr := HashText(k)
	ch, err = CompareText(good, now)
	if err != nil || !errors.Is(herr, ErrUnreadable) || len(ch) != 1 || ch[0].Now != "" {
		t.Errorf("page unreadable now: changes %+v, compare err %v, hash err %v", ch, err, herr)
	}
}
