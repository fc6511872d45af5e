package linux

import (
	"errors"
	"testing"
)

func TestCheckSyscallsClean(t *testing.T) {
	k := newFake()
	k.syscallTable(DefaultSyscalls)
	rep, err := CheckSyscalls(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != DefaultSyscalls || len(rep.Hooks) != 0 {
		t.Errorf("entries %d hooks %v; want %d and none", rep.Entries, rep.Hooks, DefaultSyscalls)
	}
}

func TestCheckSyscallsHooked(t *testing.T) {
	k := newFake()
	tab := k.syscallTable(DefaultSyscalls)
	k.modules([3]uint64{modText, 0x3000, 0x1000}, [3]uint64{modText + 0x10000, 0x2000, 0})
	k.w64(tab+62*8, modText+0x10000+0x40)     // kill -> mod1
	k.w64(tab+217*8, 0xffffffffa0000000)      // getdents64 -> nowhere known
	k.w64(tab+450*8, k.textBase+fakeTextSize) // one past _etext
	rep, err := CheckSyscalls(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []SyscallHook{{62, modText + 0x10040, "mod1"}, {217, 0xffffffffa0000000, ""}, {450, fakeTextBase + fakeTextSize, ""}}
	if len(rep.Hooks) != len(want) {
		t.Fatalf("hooks %+v, want %+v", rep.Hooks, want)
	}
	for i := range want {
		if rep.Hooks[i] != want[i] {
			t.Errorf("hook %d: %+v, want %+v", i, rep.Hooks[i], want[i])
		}
	}
	if rep, _ = CheckSyscalls(k, Options{Syscalls: 63}); len(rep.Hooks) != 1 {
		t.Errorf("explicit 63 entries: hooks %v, want only nr 62", rep.Hooks)
	}
}

func TestCheckSyscallsUnreadable(t *testing.T) {
	k := newFake()
	k.alloc(4000) // the table then straddles a page boundary
	tab := k.syscallTable(DefaultSyscalls)
	k.w64(tab+5*8, 0xffffffffa0000000)
	// Fail the page holding the table's tail.
	pg := (tab + 3000) &^ 4095
	if pg <= tab+5*8 {
		t.Fatal("table does not straddle a page")
	}
	k.holes = append(k.holes, [2]uint64{pg, pg + 4096})
	rep, err := CheckSyscalls(k, Options{})
	if !errors.Is(err, ErrUnreadable) {
		t.Fatalf("err %v, want ErrUnreadable", err)
	}
	if rep == nil || len(rep.Hooks) != 1 || rep.Hooks[0].NR != 5 {
		t.Errorf("report %+v; want the hook in the readable part", rep)
	}
	delete(k.syms, "sys_call_table")
	if _, err := CheckSyscalls(k, Options{}); !errors.Is(err, ErrLayout) {
		t.Errorf("err %v, want ErrLayout", err)
	}
}

// lookupFake names sys_call_table for n entries, then another symbol.
type lookupFake struct {
	*fakeKernel
	n uint64
}

func (l lookupFake) Lookup(addr uint64) (string, uint64, bool) {
	tab := l.syms["sys_call_table"]
	if addr >= tab && addr < tab+l.n*8 {
		return "sys_call_table", addr - tab, true
	}
	return "next_symbol", 0, true
}

func TestCheckSyscallsLengthFromLookup(t *testing.T) {
	k := newFake()
	tab := k.syscallTable(DefaultSyscalls)
	k.alloc(5 * 8) // zero padding up to the next symbol
	k.modules()
	k.w64(tab+450*8, 0xffffffffa0000000)
	rep, err := CheckSyscalls(lookupFake{k, DefaultSyscalls + 5}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != DefaultSyscalls || len(rep.Hooks) != 1 || rep.Hooks[0].NR != 450 {
		t.Errorf("entries %d hooks %+v; want %d entries (padding trimmed), hook 450", rep.Entries, rep.Hooks, DefaultSyscalls)
	}
	rep, _ = CheckSyscalls(lookupFake{k, 300}, Options{})
	if rep.Entries != 300 || len(rep.Hooks) != 0 {
		t.Errorf("entries %d hooks %+v; want 300, none", rep.Entries, rep.Hooks)
	}
}
