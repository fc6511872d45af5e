package image

import (
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// lendChunk is the longest segment LendPhys shows at once from a source it
// has to copy (a file read by pread).
const lendChunk = 4 << 20

var lendScratch = sync.Pool{New: func() any { b := make([]byte, lendChunk); return &b }}

// LendPhys implements physmem.Lender: a mapped or decompressed image shows
// its bytes in place; a file read by pread is copied in chunks; holes and
// ELF zero tails are Zero segments.
func (m *Image) LendPhys(addr, n uint64, visit func(physmem.Segment) bool) error {
	end := addr + n
	if end < addr {
		end = ^uint64(0)
	}
	failed := false
	fail := func(a, l uint64) bool {
		failed = true
		return visit(physmem.Segment{Addr: a, Len: l, Err: outOfRange(a, l)})
	}
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].end() > addr })
	for a := addr; a < end; {
		if i >= len(m.segs) {
			fail(a, end-a)
			break
		}
		s := m.segs[i]
		if s.phys > a {
			if !fail(a, min(s.phys, end)-a) {
				return batchError(1, 1)
			}
			a = min(s.phys, end)
			continue
		}
		stop := min(s.end(), end)
		if !m.lendSegment(s, a, stop, visit) {
			break
		}
		if m.progress != nil && stop-a >= progressMinRead {
			m.progress.reached(stop, m.size)
		}
		a = stop
		i++
	}
	if failed {
		return batchError(1, 1)
	}
	return nil
}

// lendSegment shows [a, stop) of segment s; false once visit said stop.
func (m *Image) lendSegment(s segment, a, stop uint64, visit func(physmem.Segment) bool) bool {
	switch src := s.src.(type) {
	case nil:
		return visit(physmem.Segment{Addr: a, Len: stop - a, Zero: true})
	case memory:
		off := s.off + (a - s.phys)
		if off+(stop-a) > uint64(len(src)) {
			return visit(physmem.Segment{Addr: a, Len: stop - a, Err: fmt.Errorf("image: lend %#x+%d: %w", a, stop-a, io.ErrUnexpectedEOF)})
		}
		return visit(physmem.Segment{Addr: a, Len: stop - a, Data: src[off : off+(stop-a)]})
	case *seekable:
		off := s.off + (a - s.phys)
		return src.visit(off, off+(stop-a), func(o, n uint64, data []byte, err error) bool {
			seg := physmem.Segment{Addr: s.phys + (o - s.off), Len: n, Data: data, Zero: data == nil && err == nil}
			if err != nil {
				seg.Err = fmt.Errorf("image: lend %#x+%d: %w", seg.Addr, n, err)
			}
			return visit(seg)
		})
	}
	bp := lendScratch.Get().(*[]byte)
	defer lendScratch.Put(bp)
	for a < stop {
		l := min(stop-a, lendChunk)
		buf := (*bp)[:l]
		seg := physmem.Segment{Addr: a, Len: l, Data: buf}
		if got, err := s.src.ReadAt(buf, int64(s.off+(a-s.phys))); uint64(got) != l {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			seg.Data, seg.Err = nil, fmt.Errorf("image: read %#x+%d: %w", a, l, err)
		}
		if !visit(seg) {
			return false
		}
		a += l
	}
	return true
}
