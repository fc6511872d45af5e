package physmemtest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// ErrInjected is the error Faulty gives the ranges it fails.
var ErrInjected = errors.New("injected read fault")

// Faulty wraps a Reader and fails every range that touches a page for which
// Fail returns true. Reads that touch no failing page go to the wrapped
// Reader unchanged. Failing pages are recorded, so a test can tell whether
// the code under test read a page at all (Hit).
type Faulty struct {
	R    physmem.Reader
	Fail func(page uint64) bool

	mu  sync.Mutex
	hit map[uint64]bool
}

// FailPages returns a Faulty that fails exactly the pages holding the given
// physical addresses.
func FailPages(r physmem.Reader, addrs ...uint64) *Faulty {
	set := make(map[uint64]bool, len(addrs))
	for _, a := range addrs {
		set[a>>12] = true
	}
	return &Faulty{R: r, Fail: func(p uint64) bool { return set[p] }}
}

// Size is the wrapped reader's size.
func (f *Faulty) Size() uint64 { return f.R.Size() }

// ReadPhys implements physmem.Reader.
func (f *Faulty) ReadPhys(ranges []physmem.Range) error {
	pass := make([]physmem.Range, 0, len(ranges))
	idx := make([]int, 0, len(ranges))
	failed := 0
	for i := range ranges {
		r := &ranges[i]
		r.Err = nil
		if p, bad := f.failing(r.Addr, uint64(len(r.Buf))); bad {
			r.Err = fmt.Errorf("read %#x+%d: page %#x: %w", r.Addr, len(r.Buf), p<<12, ErrInjected)
			failed++
			continue
		}
		pass = append(pass, *r)
		idx = append(idx, i)
	}
	if len(pass) > 0 {
		_ = f.R.ReadPhys(pass)
		for j, i := range idx {
			if ranges[i].Err = pass[j].Err; ranges[i].Err != nil {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("faulty reader: %d of %d ranges failed: %w", failed, len(ranges), physmem.ErrPartial)
	}
	return nil
}

// Hit reports whether a read touched the failing page holding addr.
func (f *Faulty) Hit(addr uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hit[addr>>12]
}

func (f *Faulty) failing(addr, n uint64) (uint64, bool) {
	if n == 0 {
		return 0, false
	}
	for p := addr >> 12; p <= (addr+n-1)>>12; p++ {
		if f.Fail(p) {
			f.mu.Lock()
			if f.hit == nil {
				f.hit = make(map[uint64]bool)
			}
			f.hit[p] = true
			f.mu.Unlock()
			return p, true
		}
	}
	return 0, false
}
