package linux

import (
	"errors"
	"fmt"
	"sort"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// defaultPageOffset is the direct map's base without memory-layout
// randomisation (4-level paging).
const defaultPageOffset = 0xffff888000000000

// x86-64 page-table entry bits and the user half of a 4-level address space.
const (
	ptePresent  = 1 << 0
	pteHuge     = 1 << 7
	pteAddrMask = 0x000ffffffffff000
	userPML4s   = 256 // entries 0..255 map the user half
	ptEntries   = 512
)

// Owner is a process that maps a physical page, and where.
type Owner struct {
	PID  int32  `json:"pid"`
	Comm string `json:"comm"`
	VA   Addr   `json:"va"`
}

// table is a page table page to read: its physical address, its level (4
// PML4 .. 1 PT), the task it belongs to and the virtual address it starts at.
type table struct {
	pa    uint64
	level int
	task  int
	va    uint64
}

// MapOwners finds, for each physical address in pas, the processes whose
// user address space maps it and at which virtual address (the byte's own
// address, not the page's). It walks every process's user page tables
// (thread-group leaders with an mm), one batch per level for all processes,
// reading the tables through the kernel's direct map. A target that runs
// 5-level paging (it says so through PagingLevels) gets ErrLayout: the walk
// reads 4-level tables.
//
// Tables that cannot be read are skipped and named in the returned error;
// the owners found elsewhere are still returned.
func MapOwners(t Target, tasks []Task, pas []uint64, opt Options) (map[uint64][]Owner, error) {
	if len(pas) == 0 {
		return map[uint64][]Owner{}, nil
	}
	if pl, ok := t.(interface{ PagingLevels() int }); ok && pl.PagingLevels() != 4 {
		return nil, fmt.Errorf("user page tables of %d-level paging: %w", pl.PagingLevels(), ErrLayout)
	}
	l := &layout{t: t}
	pgdOff := l.off("mm_struct", "pgd")
	if l.err != nil {
		return nil, l.err
	}
	pageOffset, err := pageOffsetBase(t)
	if err != nil {
		return nil, err
	}
	want := map[uint64][]uint64{} // page frame -> the addresses asked for in it
	for _, pa := range pas {
		want[pa>>12] = append(want[pa>>12], pa)
	}
	var leaders []Task
	var pgdReads []physmem.Range
	for _, tk := range tasks {
		if tk.MM == 0 || tk.Thread || tk.Err != nil {
			continue
		}
		leaders = append(leaders, tk)
		pgdReads = append(pgdReads, physmem.Range{Addr: uint64(tk.MM) + pgdOff, Buf: make([]byte, 8)})
	}
	readBatch(t, pgdReads)
	var errs []error
	var level []table
	for i, r := range pgdReads {
		if r.Err != nil {
			errs = append(errs, rangeErr("mm->pgd", r.Addr, r.Err))
			continue
		}
		pgd := le.Uint64(r.Buf)
		if pgd < pageOffset {
			errs = append(errs, fmt.Errorf("pid %d: pgd %#x: %w", leaders[i].PID, pgd, ErrBadPointer))
			continue
		}
		level = append(level, table{pa: pgd - pageOffset, level: 4, task: i})
	}
	owners := map[uint64][]Owner{}
	budget := opt.max()
	for lv := 4; lv >= 1 && len(level) > 0; lv-- {
		batch := make([]physmem.Range, len(level))
		for i, tb := range level {
			n := ptEntries
			if lv == 4 {
				n = userPML4s
			}
			batch[i] = physmem.Range{Addr: pageOffset + tb.pa, Buf: make([]byte, n*8)}
		}
		readBatch(t, batch)
		var next []table
		for i, r := range batch {
			tb := level[i]
			if r.Err != nil {
				errs = append(errs, rangeErr("page table", r.Addr, r.Err))
				continue
			}
			shift := uint(12 + 9*(lv-1))
			for e := 0; e < len(r.Buf)/8; e++ {
				pte := le.Uint64(r.Buf[e*8:])
				if pte&ptePresent == 0 {
					continue
				}
				va := tb.va | uint64(e)<<shift
				frame := pte & pteAddrMask
				if lv == 1 || (lv < 4 && pte&pteHuge != 0) {
					addOwners(owners, want, leaders[tb.task], va, frame, uint64(1)<<shift)
					continue
				}
				if budget--; budget < 0 {
					return owners, fmt.Errorf("page tables of %d processes: %w", len(leaders), ErrLimit)
				}
				next = append(next, table{pa: frame, level: lv - 1, task: tb.task, va: va})
			}
		}
		level = next
	}
	for _, os := range owners {
		sort.Slice(os, func(i, j int) bool {
			if os[i].PID != os[j].PID {
				return os[i].PID < os[j].PID
			}
			return os[i].VA < os[j].VA
		})
	}
	return owners, errors.Join(errs...)
}

// addOwners records task as an owner of each wanted address inside the
// mapping of [frame, frame+size) at va.
func addOwners(owners map[uint64][]Owner, want map[uint64][]uint64, tk Task, va, frame, size uint64) {
	if size == 4096 {
		for _, pa := range want[frame>>12] {
			owners[pa] = append(owners[pa], Owner{PID: tk.PID, Comm: tk.Comm, VA: Addr(va + pa&0xfff)})
		}
		return
	}
	frame &^= size - 1 // a huge entry's low address bits hold flags (PAT)
	for pfn := frame >> 12; pfn < (frame+size)>>12; pfn++ {
		for _, pa := range want[pfn] {
			owners[pa] = append(owners[pa], Owner{PID: tk.PID, Comm: tk.Comm, VA: Addr(va + (pa - frame))})
		}
	}
}

// pageOffsetBase is the runtime base of the kernel's direct map of physical
// memory: page_offset_base under memory-layout randomisation, else the
// fixed default.
func pageOffsetBase(t Target) (uint64, error) {
	sym, err := t.Symbol("page_offset_base")
	if err != nil {
		return defaultPageOffset, nil
	}
	rs := []physmem.Range{{Addr: sym, Buf: make([]byte, 8)}}
	readBatch(t, rs)
	if rs[0].Err != nil {
		return 0, rangeErr("page_offset_base", sym, rs[0].Err)
	}
	v := le.Uint64(rs[0].Buf)
	if !kernelPointer(v, 1<<30) {
		return 0, fmt.Errorf("page_offset_base %#x: %w", v, ErrBadPointer)
	}
	return v, nil
}
