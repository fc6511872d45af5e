package linux

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// pidMaxLimit is PID_MAX_LIMIT on 64-bit kernels: no pid or tgid exceeds it.
const pidMaxLimit = 4 << 20

// Task is one task_struct as ps shows it.
type Task struct {
	Addr   Addr   `json:"task"` // task_struct address
	PID    int32  `json:"pid"`
	TGID   int32  `json:"tgid"`
	PPID   int32  `json:"ppid"` // real_parent->tgid
	UID    uint32 `json:"uid"`  // real_cred->uid
	Comm   string `json:"comm"`
	MM     Addr   `json:"mm"` // 0 for kernel threads
	Thread bool   `json:"thread,omitempty"`
	// Err says which fields of this task could not be read or are
	// implausible; the walk still lists the task.
	Err error `json:"-"`
}

// MarshalJSON adds Err as an "error" string.
func (t Task) MarshalJSON() ([]byte, error) {
	type plain Task
	var e string
	if t.Err != nil {
		e = t.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(t), e})
}

// taskLayout is everything the task walkers need to know about task_struct.
type taskLayout struct {
	initTask                                     uint64
	tasks, pid, tgid, comm, mm, realParent, cred uint64
	credUID                                      uint64
	span                                         span
	signal, threadNode, sigThreadHead, threadGrp uint64
	threadsViaSignal                             bool
}

func resolveTaskLayout(t Target, threads bool) (*taskLayout, error) {
	l := layout{t: t}
	tl := &taskLayout{
		initTask:   l.sym("init_task"),
		tasks:      l.off("task_struct", "tasks"),
		pid:        l.off("task_struct", "pid"),
		tgid:       l.off("task_struct", "tgid"),
		comm:       l.off("task_struct", "comm"),
		mm:         l.off("task_struct", "mm"),
		realParent: l.off("task_struct", "real_parent"),
		cred:       l.off("task_struct", "real_cred"),
		credUID:    l.off("cred", "uid"),
	}
	if l.err != nil {
		return nil, l.err
	}
	fields := [][2]uint64{{tl.tasks, 16}, {tl.pid, 4}, {tl.tgid, 4}, {tl.comm, 16},
		{tl.mm, 8}, {tl.realParent, 8}, {tl.cred, 8}}
	if threads {
		// Kernels before 6.7 have both; thread_group is gone since.
		sig, errS := t.Offset("task_struct", "signal")
		node, errN := t.Offset("task_struct", "thread_node")
		head, errH := t.Offset("signal_struct", "thread_head")
		if errS == nil && errN == nil && errH == nil {
			tl.signal, tl.threadNode, tl.sigThreadHead, tl.threadsViaSignal = sig, node, head, true
			fields = append(fields, [2]uint64{sig, 8})
		} else {
			tl.threadGrp = l.off("task_struct", "thread_group")
			if l.err != nil {
				return nil, fmt.Errorf("threads: %w", l.err)
			}
		}
	}
	tl.span = spanOf(fields...)
	return tl, nil
}

// decode fills the task fields held in buf (the layout's span of the task at
// addr) and returns the pointers still to follow.
func (tl *taskLayout) decode(addr uint64, buf []byte) (tk Task, parent, cred uint64) {
	s := tl.span
	tk = Task{
		Addr: Addr(addr),
		PID:  int32(s.u32(buf, tl.pid)),
		TGID: int32(s.u32(buf, tl.tgid)),
		Comm: cstring(s.bytes(buf, tl.comm, 16)),
		MM:   Addr(s.u64(buf, tl.mm)),
	}
	if tk.PID < 0 || tk.PID > pidMaxLimit || tk.TGID < 0 || tk.TGID > pidMaxLimit {
		tk.Err = fmt.Errorf("task %#x: pid %d tgid %d: %w", addr, tk.PID, tk.TGID, ErrGarbage)
	}
	return tk, s.u64(buf, tl.realParent), s.u64(buf, tl.cred)
}

// Tasks lists the tasks on init_task's task list, thread-group leaders only
// unless opt.Threads (then each leader is followed by its other threads).
// On a torn, looping or over-long list it returns the tasks found before the
// fault with an error; per-task problems are in Task.Err, and tasks with a
// field that could not be read are also summed up in the error (a listing
// with holes is not a complete answer).
//
// The list is followed pointer by pointer, but the task_structs are first
// fetched in one batch from the addresses the PID IDR gives (a few batches,
// one per tree level), so following the list costs no round trip for every
// task the IDR knows. Without a usable IDR the walk simply reads each task.
func Tasks(t Target, opt Options) ([]Task, error) {
	tl, err := resolveTaskLayout(t, opt.Threads)
	if err != nil {
		return nil, err
	}
	var pre map[uint64][]byte
	if pidOf, _, _, err := idrTasks(t, opt.max()); err == nil {
		pre = tl.prefetch(t, pidOf)
	}
	tasks, err := tl.walk(t, opt, pre)
	return tasks, errors.Join(err, unreadableTasks(tasks))
}

// unreadableTasks sums up the tasks with a field that could not be read.
func unreadableTasks(tasks []Task) error {
	n, first := 0, error(nil)
	for _, tk := range tasks {
		if tk.Err != nil && errors.Is(tk.Err, ErrUnreadable) {
			if n++; first == nil {
				first = tk.Err
			}
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d tasks incomplete, first: %w", n, len(tasks), first)
}

// prefetch reads the span of every task in one batch, keyed by address.
func (tl *taskLayout) prefetch(t Target, tasks map[uint64]uint64) map[uint64][]byte {
	batch := make([]physmem.Range, 0, len(tasks))
	for a := range tasks {
		batch = append(batch, physmem.Range{Addr: a + tl.span.lo, Buf: make([]byte, tl.span.hi-tl.span.lo)})
	}
	readBatch(t, batch)
	pre := make(map[uint64][]byte, len(batch))
	for _, r := range batch {
		if r.Err == nil {
			pre[r.Addr-tl.span.lo] = r.Buf
		}
	}
	return pre
}

// walk follows the task list (and thread lists), using pre where it can.
func (tl *taskLayout) walk(t Target, opt Options, pre map[uint64][]byte) ([]Task, error) {
	res := walkLists(t, []listSpec{{
		head: tl.initTask + tl.tasks, linkOff: tl.tasks, span: tl.span, headIsElem: true,
	}}, pre, opt.max())[0]
	walkErr := res.err
	if walkErr != nil {
		walkErr = fmt.Errorf("task list: %w", walkErr)
	}
	var out []Task
	var links [][2]uint64
	for _, e := range res.elems {
		tk, p, c := tl.decode(e.addr, e.buf)
		out = append(out, tk)
		links = append(links, [2]uint64{p, c})
	}
	if opt.Threads {
		var terr error
		out, links, terr = tl.addThreads(t, res.elems, out, links, pre, opt.max()-len(out))
		walkErr = errors.Join(walkErr, terr)
	}
	tl.fillPointers(t, out, links)
	return out, walkErr
}

// addThreads walks every leader's thread list in lockstep and inserts each
// leader's other threads after it.
func (tl *taskLayout) addThreads(t Target, leaders []listElem, tasks []Task, links [][2]uint64, pre map[uint64][]byte, max int) ([]Task, [][2]uint64, error) {
	specs := make([]listSpec, 0, len(leaders))
	idx := make([]int, 0, len(leaders))
	var errs []error
	for i, e := range leaders {
		if tl.threadsViaSignal {
			sig := tl.span.u64(e.buf, tl.signal)
			if !kernelPointer(sig, 8) {
				errs = append(errs, fmt.Errorf("threads of task %#x: signal %#x: %w", e.addr, sig, ErrBadPointer))
				continue
			}
			specs = append(specs, listSpec{head: sig + tl.sigThreadHead, linkOff: tl.threadNode, span: tl.span})
		} else {
			specs = append(specs, listSpec{head: e.addr + tl.threadGrp, linkOff: tl.threadGrp, span: tl.span, headIsElem: true})
		}
		idx = append(idx, i)
	}
	res := walkLists(t, specs, pre, max)
	threadsOf := make(map[int][]listElem, len(res))
	for k, r := range res {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("threads of task %#x: %w", leaders[idx[k]].addr, r.err))
		}
		threadsOf[idx[k]] = r.elems
	}
	var outT []Task
	var outL [][2]uint64
	for i := range tasks {
		outT = append(outT, tasks[i])
		outL = append(outL, links[i])
		for _, e := range threadsOf[i] {
			if e.addr == leaders[i].addr {
				continue
			}
			tk, p, c := tl.decode(e.addr, e.buf)
			tk.Thread = true
			outT = append(outT, tk)
			outL = append(outL, [2]uint64{p, c})
		}
	}
	return outT, outL, errors.Join(errs...)
}

// fillPointers reads real_parent->tgid and real_cred->uid of all tasks in
// one batch.
func (tl *taskLayout) fillPointers(t Target, tasks []Task, links [][2]uint64) {
	type ref struct {
		task  int
		field int // 0 parent, 1 cred
	}
	var batch []physmem.Range
	var refs []ref
	for i, l := range links {
		for f, p := range l {
			if !kernelPointer(p, 8) {
				what := [2]string{"real_parent", "real_cred"}[f]
				tasks[i].Err = errors.Join(tasks[i].Err, fmt.Errorf("task %#x: %s %#x: %w", uint64(tasks[i].Addr), what, p, ErrBadPointer))
				continue
			}
			off := tl.tgid
			if f == 1 {
				off = tl.credUID
			}
			batch = append(batch, physmem.Range{Addr: p + off, Buf: make([]byte, 4)})
			refs = append(refs, ref{i, f})
		}
	}
	readBatch(t, batch)
	for k, r := range batch {
		tk := &tasks[refs[k].task]
		if r.Err != nil {
			tk.Err = errors.Join(tk.Err, fmt.Errorf("task %#x: %w", uint64(tk.Addr), rangeErr("parent or cred", r.Addr, r.Err)))
			continue
		}
		v := le.Uint32(r.Buf)
		if refs[k].field == 0 {
			tk.PPID = int32(v)
		} else {
			tk.UID = v
		}
	}
}

// readTasks reads the tasks at the given addresses directly (not through a
// list): one batch for their fields, one for parent and credentials.
func (tl *taskLayout) readTasks(t Target, addrs []uint64) []Task {
	batch := make([]physmem.Range, len(addrs))
	for i, a := range addrs {
		batch[i] = physmem.Range{Addr: a + tl.span.lo, Buf: make([]byte, tl.span.hi-tl.span.lo)}
	}
	readBatch(t, batch)
	out := make([]Task, len(addrs))
	links := make([][2]uint64, len(addrs))
	var ok []int
	for i, r := range batch {
		if r.Err != nil {
			out[i] = Task{Addr: Addr(addrs[i]), Err: fmt.Errorf("task: %w", rangeErr("task_struct", r.Addr, r.Err))}
			continue
		}
		out[i], links[i][0], links[i][1] = tl.decode(addrs[i], r.Buf)
		ok = append(ok, i)
	}
	sub := make([]Task, len(ok))
	subL := make([][2]uint64, len(ok))
	for k, i := range ok {
		sub[k], subL[k] = out[i], links[i]
	}
	tl.fillPointers(t, sub, subL)
	for k, i := range ok {
		out[i] = sub[k]
	}
	return out
}
