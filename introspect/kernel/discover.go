package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
)

var le = binary.LittleEndian

// KASLR moves the kernel by multiples of 2 MiB within 1 GiB.
const (
	slideStep = 2 << 20
	maxSlide  = 1 << 30
)

// initComm is init_task's comm once the boot CPU's idle task is named.
var initComm = []byte("swapper/0\x00\x00\x00\x00\x00\x00\x00")

// layout is what discovery needs from a profile.
type layout struct {
	initTask, initMM, topPgt, text uint64
	commOff, pidOff, pgdOff        uint64
}

func layoutOf(p *profile.Profile) (layout, error) {
	var l layout
	for _, s := range []struct {
		name string
		dst  *uint64
	}{{"init_task", &l.initTask}, {"init_mm", &l.initMM}, {"init_top_pgt", &l.topPgt}, {"_text", &l.text}} {
		a, err := p.Symbol(s.name)
		if err != nil {
			return l, fmt.Errorf("%w: %w", ErrProfile, err)
		}
		*s.dst = a
	}
	for _, m := range []struct {
		typ, member string
		dst         *uint64
	}{{"task_struct", "comm", &l.commOff}, {"task_struct", "pid", &l.pidOff}, {"mm_struct", "pgd", &l.pgdOff}} {
		o, err := p.Offset(m.typ, m.member)
		if err != nil {
			return l, fmt.Errorf("%w: %w", ErrProfile, err)
		}
		*m.dst = o
	}
	return l, nil
}

// slideHint is a slide the caller was told, if ok.
type slideHint struct {
	slide uint64
	ok    bool
}

// probeSlide finds the virtual KASLR slide through tr's page tables: the
// comm and pid of init_task+slide for all 512 candidate slides are read in
// one ReadVirt batch (translated level by level together). A hinted slide
// is checked alone first: one translation instead of 1,024.
func probeSlide(tr *paging.Translator, l layout, hint slideHint) (uint64, error) {
	if hint.ok && hint.slide%slideStep == 0 && hint.slide < maxSlide {
		if i := hint.slide / slideStep; findInitTask(tr, l, i, i+1) == 0 {
			return hint.slide, nil
		}
	}
	if i := findInitTask(tr, l, 0, maxSlide/slideStep); i >= 0 {
		return uint64(i) * slideStep, nil
	}
	return 0, fmt.Errorf("no slide in [0, %#x) maps init_task through cr3 %#x: %w", maxSlide, tr.CR3(), ErrNoInitTask)
}

// findInitTask reads the comm and pid of init_task+i*slideStep for i in
// [from, to) and returns the first i (less from) where they are
// init_task's, or -1.
func findInitTask(tr *paging.Translator, l layout, from, to uint64) int {
	n := int(to - from)
	ranges := make([]physmem.Range, 0, 2*n)
	buf := make([]byte, n*(len(initComm)+4))
	for i := 0; i < n; i++ {
		task := l.initTask + (from+uint64(i))*slideStep
		c := buf[i*(len(initComm)+4):]
		ranges = append(ranges,
			physmem.Range{Addr: task + l.commOff, Buf: c[:len(initComm)]},
			physmem.Range{Addr: task + l.pidOff, Buf: c[len(initComm) : len(initComm)+4]})
	}
	_ = tr.ReadVirt(ranges)
	for i := 0; i < n; i++ {
		comm, pid := ranges[2*i], ranges[2*i+1]
		if comm.Err == nil && pid.Err == nil && bytes.Equal(comm.Buf, initComm) && le.Uint32(pid.Buf) == 0 {
			return i
		}
	}
	return -1
}

// scanInitTask calls try with the physical address of each init_task
// candidate (a "swapper/0" comm at the comm offset with pid 0 beside it),
// in address order, until try returns true.
func scanInitTask(r physmem.Reader, l layout, try func(taskPA uint64) bool) {
	pid := make([]byte, 4)
	physmem.Scan(r, initComm, func(pa uint64) bool {
		if pa < l.commOff {
			return true
		}
		task := pa - l.commOff
		return !(r.ReadPhys([]physmem.Range{{Addr: task + l.pidOff, Buf: pid}}) == nil && le.Uint32(pid) == 0 && try(task))
	})
}
