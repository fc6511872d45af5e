package linux

import "testing"

// fuzzWorld is a complete small kernel: tasks, threads, PID IDR, modules and
// a short sys_call_table, all in the data region the fuzzer rewrites.
func fuzzWorld() *world {
	w := newWorld()
	w.k.modules([3]uint64{modText, 0x3000, 0x1000}, [3]uint64{modText + 0x10000, 0x2000, 0})
	w.k.syscallTable(64)
	return w
}

// FuzzWalkers runs every walker over arbitrary kernel memory (the data
// region replaced by the input, symbols and layout kept): no panic, no hang,
// and the bound holds.
func FuzzWalkers(f *testing.F) {
	clean := fuzzWorld()
	f.Add(clean.k.mem)
	attacked := fuzzWorld()
	attacked.unlink(attacked.daemon)
	attacked.k.w64(attacked.k.syms["sys_call_table"]+8, modText+0x10)
	f.Add(attacked.k.mem)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, mem []byte) {
		k := fuzzWorld().k
		k.mem = mem
		const bound = 64
		opt := Options{MaxObjects: bound, Syscalls: 64}
		if ts, _ := Tasks(k, opt); len(ts) > bound {
			t.Fatalf("%d tasks over a bound of %d", len(ts), bound)
		}
		opt.Threads = true
		if ts, _ := Tasks(k, opt); len(ts) > 2*bound {
			t.Fatalf("%d tasks and threads over a bound of %d", len(ts), bound)
		}
		if ms, _ := Modules(k, opt); len(ms) > bound {
			t.Fatalf("%d modules over a bound of %d", len(ms), bound)
		}
		if rep, _ := CheckSyscalls(k, opt); rep != nil && len(rep.Hooks) > 64 {
			t.Fatalf("%d hooks in a 64-entry table", len(rep.Hooks))
		}
		_, _ = HiddenTasks(k, opt)
	})
}
