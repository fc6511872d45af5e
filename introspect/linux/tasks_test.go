package linux

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type row struct {
	pid, tgid, ppid int32
	uid             uint32
	comm            string
	thread          bool
}

func rows(ts []Task) []row {
	var out []row
	for _, t := range ts {
		out = append(out, row{t.PID, t.TGID, t.PPID, t.UID, t.Comm, t.Thread})
	}
	return out
}

func sameRows(t *testing.T, got []Task, want []row) {
	t.Helper()
	g := rows(got)
	if len(g) != len(want) {
		t.Fatalf("got %d tasks %+v, want %d %+v", len(g), g, len(want), want)
	}
	for i := range want {
		if g[i] != want[i] {
			t.Errorf("task %d: got %+v, want %+v", i, g[i], want[i])
		}
	}
}

func TestTasksLeaders(t *testing.T) {
	w := newWorld()
	got, err := Tasks(w.k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, got, []row{
		{0, 0, 0, 0, "swapper/0", false},
		{1, 1, 0, 0, "init", false},
		{2, 2, 0, 0, "kthreadd", false},
		{100, 100, 1, 1000, "sh", false},
		{200, 200, 1, 0, "daemon-with-a-l", false}, // comm holds 15 bytes
	})
	if uint64(got[3].Addr) != w.sh || uint64(got[3].MM) != 0xffff888012350000 || got[2].MM != 0 {
		t.Errorf("sh at %s mm %s, kthreadd mm %s", got[3].Addr, got[3].MM, got[2].MM)
	}
	for _, tk := range got {
		if tk.Err != nil {
			t.Errorf("task %d: %v", tk.PID, tk.Err)
		}
	}
	// The IDR (head, two tree levels, the pids' tasks), every task_struct
	// in one batch, init_task (not in the IDR), then parents and credentials.
	if w.k.calls != 7 {
		t.Errorf("%d ReadVirt batches, want 7", w.k.calls)
	}
}

// TestTasksBatches: with the IDR prefetch, ps costs a handful of round
// trips whatever the number of tasks; without an IDR, one per task.
func TestTasksBatches(t *testing.T) {
	k := bigWorld(2000)
	got, err := Tasks(k, Options{})
	if err != nil || len(got) != 2001 {
		t.Fatalf("%d tasks, err %v", len(got), err)
	}
	if k.calls > 8 {
		t.Errorf("%d batches for 2000 tasks with the IDR, want at most 8", k.calls)
	}
	delete(k.syms, "init_pid_ns")
	k.calls = 0
	again, err := Tasks(k, Options{})
	if err != nil || len(again) != 2001 {
		t.Fatalf("without IDR: %d tasks, err %v", len(again), err)
	}
	if k.calls != 2002 {
		t.Errorf("without IDR: %d batches, want 2002 (one per task, one for parents)", k.calls)
	}
	for i := range got {
		if got[i] != again[i] {
			t.Fatalf("task %d differs with and without prefetch: %+v vs %+v", i, got[i], again[i])
		}
	}
}

func TestTasksThreads(t *testing.T) {
	for _, viaSignal := range []bool{true, false} {
		w := newWorld()
		if !viaSignal {
			delete(w.k.off, "task_struct.thread_node")
		}
		got, err := Tasks(w.k, Options{Threads: true})
		if err != nil {
			t.Fatal(err)
		}
		sameRows(t, got, []row{
			{0, 0, 0, 0, "swapper/0", false},
			{1, 1, 0, 0, "init", false},
			{2, 2, 0, 0, "kthreadd", false},
			{100, 100, 1, 1000, "sh", false},
			{101, 100, 1, 1000, "sh", true},
			{102, 100, 1, 1000, "sh-worker", true},
			{200, 200, 1, 0, "daemon-with-a-l", false},
		})
		// Thread lists are walked in lockstep: the longest (3) bounds the rounds.
		if w.k.calls > 6+4 {
			t.Errorf("signal=%v: %d batches, want at most 10", viaSignal, w.k.calls)
		}
	}
}

func TestTasksCycle(t *testing.T) {
	w := newWorld()
	// kthreadd -> sh -> init: a loop that never returns to init_task.
	w.k.w64(w.sh+w.k.o("task_struct.tasks"), w.init+w.k.o("task_struct.tasks"))
	got, err := Tasks(w.k, Options{})
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err %v, want ErrCycle", err)
	}
	if len(got) != 4 || got[3].PID != 100 {
		t.Errorf("got %+v before the loop, want swapper, init, kthreadd, sh", rows(got))
	}
}

func TestTasksGarbagePointers(t *testing.T) {
	cases := []struct {
		name string
		next uint64
		want error
	}{
		{"user address", 0x00007fff12345678, ErrBadPointer},
		{"misaligned", 0xffff888000100003, ErrBadPointer},
		{"unmapped", 0xffffc90000000000, ErrUnreadable},
		{"null", 0, ErrBadPointer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			w.k.w64(w.kthreadd+w.k.o("task_struct.tasks"), c.next)
			got, err := Tasks(w.k, Options{})
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if len(got) != 3 {
				t.Errorf("got %d tasks, want the 3 before the bad link", len(got))
			}
		})
	}
}

func TestTasksBound(t *testing.T) {
	w := newWorld()
	got, err := Tasks(w.k, Options{MaxObjects: 3})
	if !errors.Is(err, ErrLimit) || len(got) != 3 {
		t.Fatalf("got %d tasks, err %v; want 3 and ErrLimit", len(got), err)
	}
	got, err = Tasks(w.k, Options{MaxObjects: 5, Threads: true})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("threads over the bound: err %v, want ErrLimit", err)
	}
	if len(got) > 5+3 {
		t.Errorf("%d tasks listed with a bound of 5", len(got))
	}
}

func TestTasksPerObjectErrors(t *testing.T) {
	w := newWorld()
	w.k.w64(w.sh+w.k.o("task_struct.real_cred"), 0x1234)                 // garbage cred
	w.k.w64(w.init+w.k.o("task_struct.real_parent"), 0xffffc90000000000) // unmapped parent
	w.k.w32(w.daemon+w.k.o("task_struct.pid"), 0xffffffff)               // pid -1
	got, err := Tasks(w.k, Options{})
	// The walk goes on; the unreadable parent makes the listing incomplete.
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "1 of 5 tasks incomplete") {
		t.Fatalf("err %v; want the one task with an unreadable field counted", err)
	}
	if len(got) != 5 {
		t.Fatalf("got %d tasks, want 5", len(got))
	}
	if !errors.Is(got[3].Err, ErrBadPointer) || got[3].UID != 0 || got[3].PPID != 1 {
		t.Errorf("sh: uid %d ppid %d err %v; want uid unknown, ppid 1, ErrBadPointer", got[3].UID, got[3].PPID, got[3].Err)
	}
	if !errors.Is(got[1].Err, ErrUnreadable) {
		t.Errorf("init: err %v, want ErrUnreadable", got[1].Err)
	}
	if !errors.Is(got[4].Err, ErrGarbage) {
		t.Errorf("daemon: err %v, want ErrGarbage", got[4].Err)
	}
	if got[2].Err != nil || got[2].Comm != "kthreadd" {
		t.Errorf("kthreadd spoiled by its neighbours: %+v", got[2])
	}
}

func TestTasksLayoutMissing(t *testing.T) {
	w := newWorld()
	delete(w.k.off, "task_struct.comm")
	if _, err := Tasks(w.k, Options{}); !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), "task_struct.comm") {
		t.Fatalf("err %v, want ErrLayout naming task_struct.comm", err)
	}
	delete(w.k.syms, "init_task")
	if _, err := Tasks(w.k, Options{}); !errors.Is(err, ErrLayout) {
		t.Fatalf("err %v, want ErrLayout", err)
	}
}

func TestTaskJSON(t *testing.T) {
	tk := Task{Addr: 0xffff888000100040, PID: 7, TGID: 7, PPID: 1, UID: 1000, Comm: "x", Err: ErrGarbage}
	b, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["task"] != "0xffff888000100040" || m["pid"] != 7.0 || m["comm"] != "x" || m["error"] != ErrGarbage.Error() {
		t.Errorf("json %s", b)
	}
	var back struct{ Task Addr }
	if err := json.Unmarshal([]byte(`{"Task":"0xffff888000100040"}`), &back); err != nil || back.Task != tk.Addr {
		t.Errorf("addr round trip: %v %v", back.Task, err)
	}
}
