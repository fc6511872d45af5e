package paging

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// piece is the part of a virtual range inside one 4 KiB page.
type piece struct {
	rng      int    // index of the range it belongs to
	off, end int    // its bytes in the range's Buf
	va       uint64 // its first virtual address
}

// ReadVirt reads virtual memory in one batch: Range.Addr is a virtual
// address. Ranges are split at page boundaries, every piece is translated
// in one Translate call, pieces contiguous in physical memory are merged,
// and all are read in one physmem batch straight into the callers' buffers.
// Each range gets its own error; the returned error wraps physmem.ErrPartial
// when any failed.
func (t *Translator) ReadVirt(ranges []physmem.Range) error {
	var pieces []piece
	for i := range ranges {
		r := &ranges[i]
		r.Err = nil
		n := uint64(len(r.Buf))
		if n == 0 {
			continue
		}
		if r.Addr+n-1 < r.Addr {
			r.Err = fmt.Errorf("paging: range %#x+%d wraps the address space: %w", r.Addr, n, ErrNonCanonical)
			continue
		}
		for off := uint64(0); off < n; {
			va := r.Addr + off
			k := min(n-off, PageSize4K-va&(PageSize4K-1))
			pieces = append(pieces, piece{rng: i, off: int(off), end: int(off + k), va: va})
			off += k
		}
	}
	if len(pieces) > 0 {
		vas := make([]uint64, len(pieces))
		for k, p := range pieces {
			vas[k] = p.va
		}
		trs, _ := t.Translate(vas)

		batch := make([]physmem.Range, 0, len(pieces))
		owner := make([]int, 0, len(pieces))
		var lastOff int // start in the owner's Buf of the last batch entry
		for k, p := range pieces {
			r := &ranges[p.rng]
			if r.Err != nil {
				continue
			}
			if trs[k].Err != nil {
				r.Err = trs[k].Err
				continue
			}
			pa := trs[k].PA
			if n := len(batch); n > 0 && owner[n-1] == p.rng && batch[n-1].Addr+uint64(len(batch[n-1].Buf)) == pa {
				batch[n-1].Buf = r.Buf[lastOff:p.end]
				continue
			}
			batch = append(batch, physmem.Range{Addr: pa, Buf: r.Buf[p.off:p.end]})
			owner = append(owner, p.rng)
			lastOff = p.off
		}
		_ = t.r.ReadPhys(batch) // per-range errors are collected below
		for k := range batch {
			if r := &ranges[owner[k]]; batch[k].Err != nil && r.Err == nil {
				r.Err = fmt.Errorf("paging: read va %#x+%d: %w", r.Addr, len(r.Buf), batch[k].Err)
			}
		}
	}
	failed := 0
	for i := range ranges {
		if ranges[i].Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("paging: %d of %d virtual ranges failed: %w", failed, len(ranges), physmem.ErrPartial)
	}
	return nil
}
