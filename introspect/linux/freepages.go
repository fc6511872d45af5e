package linux

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// defaultVmemmapBase is where the struct page array starts on x86-64
// without memory-layout randomisation (and with 4-level paging).
const defaultVmemmapBase = 0xffffea0000000000

// Page-type encodings of a free buddy block's head page. The kernel keeps
// the type in page_type, which overlays _mapcount (-1, all ones, when the
// page has no type):
//   - up to 6.11, a type is a cleared bit: PG_buddy is 0x80, so a buddy
//     head reads 0xffffff7f;
//   - from 6.12, the type is the top byte (PGTY_buddy 0xf0) and the rest is
//     zero, so a buddy head reads 0xf0000000.
//
// Neither value is a possible mapcount, so both are accepted on any kernel.
const (
	buddyTypeBit   = 0xffffff7f
	buddyTypeByte  = 0xf0000000
	maxBuddyOrder  = 12 // MAX_ORDER is 11 (6.1) or MAX_PAGE_ORDER 10 (6.12+); garbage above
	vmemmapReadLen = 4096
)

// FreePages returns the page frame numbers, ascending, of every page the
// guest kernel's buddy allocator holds free: the head page of each free
// block (page_type says buddy, page->private its order) and the rest of its
// 2^order pages. It reads the struct page array (vmemmap) for frames
// [0, maxPFN) in page-sized batches.
//
// A free page holds nothing the kernel will read until it allocates it
// again, so it is the one kind of guest memory a synthetic workload may
// write without changing any answer an IDS gives about the kernel. Pages on
// per-CPU free lists are not buddy pages and are not reported: the result
// is a subset of the free memory, never a page in use.
//
// Unreadable parts of the array (the vmemmap of holes is not mapped) are
// skipped; an error is returned only when the layout cannot be resolved or
// nothing at all could be read.
func FreePages(t Target, maxPFN uint64) ([]uint64, error) {
	l := &layout{t: t}
	pageSize := l.size("page")
	typeOff := l.off("page", "page_type")
	privOff := l.off("page", "private")
	if l.err != nil {
		return nil, l.err
	}
	if pageSize < 32 || pageSize > 256 || typeOff+4 > pageSize || privOff+8 > pageSize {
		return nil, fmt.Errorf("struct page of %d bytes (page_type at %d, private at %d): %w", pageSize, typeOff, privOff, ErrGarbage)
	}
	base, err := vmemmapBase(t)
	if err != nil {
		return nil, err
	}
	total := maxPFN * pageSize
	var batch []physmem.Range
	for off := uint64(0); off < total; off += vmemmapReadLen {
		batch = append(batch, physmem.Range{Addr: base + off, Buf: make([]byte, min(vmemmapReadLen, total-off))})
	}
	readBatch(t, batch)
	var free []uint64
	read := 0
	next := uint64(0) // frames below next are already counted in a block
	for _, r := range batch {
		if r.Err != nil {
			continue
		}
		read++
		first := (r.Addr - base + pageSize - 1) / pageSize
		for pfn := first; (pfn+1)*pageSize <= r.Addr-base+uint64(len(r.Buf)); pfn++ {
			if pfn < next {
				continue
			}
			o := pfn*pageSize - (r.Addr - base)
			pt := le.Uint32(r.Buf[o+typeOff:])
			if pt != buddyTypeBit && pt != buddyTypeByte {
				continue
			}
			order := le.Uint64(r.Buf[o+privOff:])
			if order > maxBuddyOrder || pfn%(1<<order) != 0 {
				continue
			}
			end := min(pfn+1<<order, maxPFN)
			for p := pfn; p < end; p++ {
				free = append(free, p)
			}
			next = end
		}
	}
	if read == 0 && len(batch) > 0 {
		return nil, fmt.Errorf("struct page array at %#x: %w: %w", base, ErrUnreadable, batch[0].Err)
	}
	return free, nil
}

// vmemmapBase is the runtime address of the struct page array: the value of
// vmemmap_base under memory-layout randomisation, else the fixed default.
func vmemmapBase(t Target) (uint64, error) {
	sym, err := t.Symbol("vmemmap_base")
	if err != nil {
		return defaultVmemmapBase, nil
	}
	buf := make([]byte, 8)
	rs := []physmem.Range{{Addr: sym, Buf: buf}}
	readBatch(t, rs)
	if rs[0].Err != nil {
		return 0, rangeErr("vmemmap_base", sym, rs[0].Err)
	}
	v := le.Uint64(buf)
	if !kernelPointer(v, 1<<21) {
		return 0, fmt.Errorf("vmemmap_base %#x: %w", v, ErrBadPointer)
	}
	return v, nil
}
