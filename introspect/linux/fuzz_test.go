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

// FuzzWalkers runs every walker over a kernel corrupted by the input: patch
// overwrites the data region at offset off (wrapping), so mutations land in
// real tasks, lists, IDR nodes, modules and the syscall table, and flipped
// low pointer bytes make pointers to other objects. No panic, no hang, and
// the bound holds.
func FuzzWalkers(f *testing.F) {
	w := fuzzWorld()
	k := w.k
	at := func(addr uint64) uint32 { return uint32(addr - k.base) }
	f.Add(uint32(0), []byte{})
	f.Add(at(w.kthreadd+k.o("task_struct.tasks")), []byte{0x40})                   // next -> another object
	f.Add(at(w.sh+k.o("task_struct.tasks")), []byte{0x00, 0x00, 0x00, 0x00, 0x80}) // next -> unmapped
	f.Add(at(w.daemon+k.o("task_struct.real_cred")), []byte{1, 2, 3})
	f.Add(at(w.sh+k.o("task_struct.signal")), []byte{0x08})
	head := k.r64(k.syms["init_pid_ns"] + k.o("pid_namespace.idr.idr_rt.xa_head"))
	f.Add(at(head-2), []byte{7})                                 // root shift
	f.Add(at(head-2+k.o("xa_node.slots")+8), []byte{0x02, 0x01}) // slot -> internal entry
	f.Add(at(k.syms["modules"]), []byte{0x10})
	f.Add(at(k.syms["sys_call_table"]+8), []byte{0, 0, 0, 0xc0})
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		k := fuzzWorld().k
		for i, b := range patch {
			k.mem[(int(off)+i)%len(k.mem)] = b
		}
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
		if rep, _ := HiddenTasks(k, opt); rep != nil && len(rep.Hidden) > bound {
			t.Fatalf("%d hidden tasks over a bound of %d", len(rep.Hidden), bound)
		}
	})
}
