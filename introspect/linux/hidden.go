package linux

import (
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// HiddenReport is the outcome of HiddenTasks.
type HiddenReport struct {
	Listed int    `json:"listed"` // tasks on the task list, threads included
	InIDR  int    `json:"in_idr"` // tasks reachable from init_pid_ns's IDR
	Hidden []Task `json:"hidden"`
}

// pidLayout locates a struct pid's task of type PIDTYPE_PID.
type pidLayout struct {
	idrHead  uint64 // address of init_pid_ns.idr.idr_rt.xa_head
	first    uint64 // struct pid: tasks[PIDTYPE_PID].first
	pidLinks uint64 // task_struct: pid_links[PIDTYPE_PID]
}

func resolvePIDLayout(t Target) (*pidLayout, error) {
	l := layout{t: t}
	pl := &pidLayout{
		idrHead:  l.sym("init_pid_ns") + l.off("pid_namespace", "idr.idr_rt.xa_head"),
		first:    l.off("pid", "tasks"), // PIDTYPE_PID is 0: tasks[0].first
		pidLinks: l.off("task_struct", "pid_links"),
	}
	return pl, l.err
}

// HiddenTasks finds tasks that own a PID (reachable from init_pid_ns's IDR,
// which every pid of every namespace is allocated in) but are missing from
// the task list and are no thread of a listed thread group: the trace of a
// rootkit that unlinks itself from init_task.tasks.
//
// The IDR is walked before the task list, and each candidate is confirmed by
// re-reading its struct pid, so a task that exits meanwhile is not reported.
// Every read the answer depends on that failed is in the returned error, so
// no hidden tasks with a nil error means clean.
func HiddenTasks(t Target, opt Options) (*HiddenReport, error) {
	tl, err := resolveTaskLayout(t, true)
	if err != nil {
		return nil, err
	}
	pidOf, pl, errs, err := idrTasks(t, opt.max())
	if err != nil {
		return nil, err
	}
	listed, lerr := tl.walk(t, Options{MaxObjects: opt.MaxObjects, Threads: true}, tl.prefetch(t, pidOf))
	if lerr != nil {
		errs = append(errs, lerr)
	}
	onList := make(map[uint64]struct{}, len(listed))
	groups := make(map[int32]struct{}, len(listed))
	for _, tk := range listed {
		onList[uint64(tk.Addr)] = struct{}{}
		if !tk.Thread {
			groups[tk.TGID] = struct{}{}
		}
	}
	var candAddrs, candPIDs []uint64
	for task, pid := range pidOf {
		if _, ok := onList[task]; !ok {
			candAddrs = append(candAddrs, task)
			candPIDs = append(candPIDs, pid)
		}
	}
	rep := &HiddenReport{Listed: len(listed), InIDR: len(pidOf), Hidden: []Task{}}
	if len(candAddrs) == 0 {
		return rep, errors.Join(errs...)
	}
	if lerr != nil {
		// The list walk stopped early: tasks past the break are missing from
		// what was read, not necessarily from the list. Reporting them would
		// be a false alarm; the error makes the check "could not check".
		errs = append(errs, fmt.Errorf("%d tasks own a PID but were not reached on the task list, which ended early: not reported as hidden", len(candAddrs)))
		return rep, errors.Join(errs...)
	}
	// Confirm: a task that exited since the IDR walk no longer owns its pid.
	// A candidate whose pid cannot be re-read is neither confirmed nor
	// cleared: the error says the check is incomplete.
	still, cerrs := pl.tasksOf(t, candPIDs)
	for _, e := range cerrs {
		errs = append(errs, fmt.Errorf("confirm hidden candidate: %w", e))
	}
	var confirmed []uint64
	for i, a := range candAddrs {
		if _, ok := still[a]; ok && still[a] == candPIDs[i] {
			confirmed = append(confirmed, a)
		}
	}
	for _, tk := range tl.readTasks(t, confirmed) {
		if _, ok := groups[tk.TGID]; ok && tk.Err == nil && tk.TGID != tk.PID {
			continue // a thread of a listed group
		}
		rep.Hidden = append(rep.Hidden, tk)
	}
	sortTasks(rep.Hidden)
	return rep, errors.Join(errs...)
}

// idrTasks walks init_pid_ns's IDR: the PIDTYPE_PID task of every struct
// pid, mapped to that pid. err is set when the IDR cannot be walked at all;
// errs lists the parts that could not be read.
func idrTasks(t Target, max int) (pidOf map[uint64]uint64, pl *pidLayout, errs []error, err error) {
	if pl, err = resolvePIDLayout(t); err != nil {
		return nil, nil, nil, err
	}
	xl, err := resolveXALayout(t)
	if err != nil {
		return nil, nil, nil, err
	}
	headBuf := []physmem.Range{{Addr: pl.idrHead, Buf: make([]byte, 8)}}
	readBatch(t, headBuf)
	if headBuf[0].Err != nil {
		return nil, nil, nil, fmt.Errorf("pid idr: %w", rangeErr("xa_head", pl.idrHead, headBuf[0].Err))
	}
	pids, idrErr := walkXArray(t, le.Uint64(headBuf[0].Buf), xl, max)
	if idrErr != nil {
		errs = append(errs, fmt.Errorf("pid idr: %w", idrErr))
	}
	pidOf, perr := pl.tasksOf(t, pids)
	return pidOf, pl, append(errs, perr...), nil
}

// tasksOf maps the PIDTYPE_PID task of each struct pid to that pid, in one
// batch. A pid with no such task (only a group or session id now) is
// skipped.
func (pl *pidLayout) tasksOf(t Target, pids []uint64) (map[uint64]uint64, []error) {
	var errs []error
	batch := make([]physmem.Range, 0, len(pids))
	var from []uint64
	for _, p := range pids {
		if !kernelPointer(p, 8) {
			errs = append(errs, fmt.Errorf("pid idr entry %#x: %w", p, ErrBadPointer))
			continue
		}
		batch = append(batch, physmem.Range{Addr: p + pl.first, Buf: make([]byte, 8)})
		from = append(from, p)
	}
	readBatch(t, batch)
	out := make(map[uint64]uint64, len(batch))
	for i, r := range batch {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("struct pid %#x: %w", from[i], rangeErr("tasks", r.Addr, r.Err)))
			continue
		}
		first := le.Uint64(r.Buf)
		if first == 0 {
			continue
		}
		if !kernelPointer(first, 8) {
			errs = append(errs, fmt.Errorf("struct pid %#x: task link %#x: %w", from[i], first, ErrBadPointer))
			continue
		}
		out[first-pl.pidLinks] = from[i]
	}
	return out, errs
}
