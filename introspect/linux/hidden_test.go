package linux

import (
	"errors"
	"fmt"
	"testing"
)

func TestHiddenTasksClean(t *testing.T) {
	w := newWorld()
	rep, err := HiddenTasks(w.k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Listed != 7 || rep.InIDR != 6 || len(rep.Hidden) != 0 {
		t.Errorf("report %+v; want 7 listed, 6 in the IDR, none hidden", rep)
	}
}

func TestHiddenTasksUnlinked(t *testing.T) {
	w := newWorld()
	w.unlink(w.daemon)
	rep, err := HiddenTasks(w.k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Hidden) != 1 || rep.Hidden[0].PID != 200 || rep.Hidden[0].Comm != "daemon-with-a-l" ||
		uint64(rep.Hidden[0].Addr) != w.daemon || rep.Hidden[0].PPID != 1 {
		t.Fatalf("hidden %+v; want the daemon, pid 200", rep.Hidden)
	}
}

func TestHiddenTasksGroup(t *testing.T) {
	w := newWorld()
	w.unlink(w.sh)
	rep, err := HiddenTasks(w.k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []int32
	for _, h := range rep.Hidden {
		got = append(got, h.PID)
	}
	if fmt.Sprint(got) != "[100 101 102]" {
		t.Errorf("hidden pids %v; want the shell and its threads [100 101 102]", got)
	}
}

func TestHiddenTasksThreadNotOnThreadList(t *testing.T) {
	// A thread missing from its group's thread list but whose group is
	// listed is not reported: it is a thread of a listed group.
	w := newWorld()
	k := w.k
	sig := k.r64(w.sh + k.o("task_struct.signal"))
	k.circular(sig+k.o("signal_struct.thread_head"), w.sh+k.o("task_struct.thread_node"), w.t1+k.o("task_struct.thread_node"))
	rep, err := HiddenTasks(k, Options{})
	if err != nil || len(rep.Hidden) != 0 {
		t.Errorf("hidden %+v err %v; want none", rep.Hidden, err)
	}
}

func TestHiddenTasksExitDuringWalk(t *testing.T) {
	w := newWorld()
	w.unlink(w.daemon)
	pid := w.pids[200]
	// Batches 1-4 read the IDR (head, two levels, the pids' tasks); the
	// daemon then exits: its pid no longer names it.
	exited := false
	w.k.onRead = func(call int) {
		if call == 5 {
			w.k.w64(pid+w.k.o("pid.tasks"), 0)
			exited = true
		}
	}
	rep, err := HiddenTasks(w.k, Options{})
	if err != nil || len(rep.Hidden) != 0 {
		t.Errorf("hidden %+v err %v; want none after the exit", rep.Hidden, err)
	}
	if !exited {
		t.Error("the walk ended before the task exited")
	}
}

func TestHiddenTasksDeepIDR(t *testing.T) {
	k := newFake()
	swapper := k.task(0, 0, 0, 0, "swapper/0", 0)
	k.group(swapper)
	var listed, all []uint64
	for _, pid := range []int32{1, 63, 64, 4095, 4096, 70000} {
		tk := k.task(pid, pid, swapper, 0, fmt.Sprint("p", pid), 0)
		k.group(tk)
		all = append(all, tk)
		if pid != 4096 {
			listed = append(listed, tk)
		}
	}
	k.taskList(swapper, listed...)
	k.pidIDR(all...)
	head := k.r64(k.syms["init_pid_ns"] + k.o("pid_namespace.idr.idr_rt.xa_head"))
	if shift := k.mem[head-2-k.base]; shift != 12 {
		t.Fatalf("root shift %d, want a 3-level tree (12)", shift)
	}
	rep, err := HiddenTasks(k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.InIDR != 6 || len(rep.Hidden) != 1 || rep.Hidden[0].PID != 4096 {
		t.Errorf("report %+v; want 6 in the IDR and pid 4096 hidden", rep)
	}
}

func TestXArrayGarbage(t *testing.T) {
	k := newFake()
	xl, err := resolveXALayout(k)
	if err != nil {
		t.Fatal(err)
	}
	leaf1, leaf2 := k.alloc(64), k.alloc(64)
	head := k.xarray(map[uint64]uint64{1: leaf1, 100: leaf2})
	root := head - 2
	got, err := walkXArray(k, head, xl, 100)
	if err != nil || len(got) != 2 {
		t.Fatalf("leaves %x err %v; want 2", got, err)
	}
	slots := root + k.o("xa_node.slots")
	child := k.r64(slots) - 2
	// A child pointing back at the root: a cycle (and a wrong shift).
	k.w64(child+k.o("xa_node.slots")+5*8, head)
	if _, err = walkXArray(k, head, xl, 100); !errors.Is(err, ErrGarbage) {
		t.Errorf("node under leaf level: err %v, want ErrGarbage", err)
	}
	k.w64(child+k.o("xa_node.slots")+5*8, 0)
	k.w64(slots+8*8, head) // root slot 8 -> root again
	got, err = walkXArray(k, head, xl, 100)
	if !errors.Is(err, ErrCycle) || len(got) != 2 {
		t.Errorf("leaves %x err %v; want 2 and ErrCycle", got, err)
	}
	k.w64(slots+8*8, 0)
	k.mem[child-k.base] = 7 // shift not a multiple of 6
	if got, err = walkXArray(k, head, xl, 100); !errors.Is(err, ErrGarbage) || len(got) != 1 {
		t.Errorf("leaves %x err %v; want 1 and ErrGarbage", got, err)
	}
	k.mem[child-k.base] = 0
	k.w64(slots+9*8, 0x1234|2) // an internal entry pointing at user memory
	if _, err = walkXArray(k, head, xl, 100); !errors.Is(err, ErrBadPointer) {
		t.Errorf("err %v, want ErrBadPointer", err)
	}
	k.w64(slots+9*8, 0)
	if _, err = walkXArray(k, head, xl, 1); !errors.Is(err, ErrLimit) {
		t.Errorf("err %v, want ErrLimit", err)
	}
	// Sibling, retry and value entries are no pointers.
	k.w64(slots+10*8, 1<<2|2)
	k.w64(slots+11*8, 256<<2|2)
	k.w64(slots+12*8, 7<<1|1)
	if got, err = walkXArray(k, head, xl, 100); err != nil || len(got) != 2 {
		t.Errorf("leaves %x err %v; want 2", got, err)
	}
	if got, _ = walkXArray(k, leaf1, xl, 100); len(got) != 1 || got[0] != leaf1 {
		t.Errorf("lone head entry: %x", got)
	}
}

func TestHiddenTasksBadPidEntry(t *testing.T) {
	w := newWorld()
	w.unlink(w.daemon)
	w.k.w64(w.pids[2]+w.k.o("pid.tasks"), 0x00007f0000000000)
	rep, err := HiddenTasks(w.k, Options{})
	if !errors.Is(err, ErrBadPointer) {
		t.Errorf("err %v, want ErrBadPointer", err)
	}
	if rep == nil || len(rep.Hidden) != 1 || rep.Hidden[0].PID != 200 {
		t.Errorf("report %+v; the other pids still checked", rep)
	}
}
