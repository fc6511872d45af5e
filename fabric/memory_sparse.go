package fabric

import "github.com/vmemtrans/vmemtrans/introspect/physmem"

var _ physmem.Sparse = (*Memory)(nil)

// NextData implements physmem.Sparse: the first extent at or after addr of
// frames that hold content, in guest RAM here or on a sub-host. Layout holes
// are not guest memory, and a frame that is a hole of guest RAM under a
// local word was never written (it reads as zeros), so a scan skips both.
// The answer is a snapshot: frames move meanwhile, and a frame written
// after the scan passed is the scan's concurrent write like any other.
func (m *Memory) NextData(addr uint64) (start, end uint64, ok bool) {
	for _, r := range m.layout {
		if r.End <= addr {
			continue
		}
		pos := max(addr, r.Start) &^ (PageSize - 1)
		if s, found := m.nextContent(pos, r.End); found {
			return max(addr, s), m.contentEnd(s, r.End), true
		}
	}
	return 0, 0, false
}

// nextContent is the first page in [pos, end) that holds content.
func (m *Memory) nextContent(pos, end uint64) (uint64, bool) {
	data := m.local.dataFrom(pos, end)
	for a := pos; a < data; a += PageSize {
		if m.cfg.Locations.Load(GFNOf(a)).State() != StateLocal {
			return a, true
		}
	}
	return data, data < end
}

// contentEnd is the end of the run of pages with content that starts at
// start (which holds content).
func (m *Memory) contentEnd(start, end uint64) uint64 {
	e := start
	for e < end {
		e = m.local.holeFrom(e, end)
		for e < end && m.cfg.Locations.Load(GFNOf(e)).State() != StateLocal {
			e += PageSize
		}
		if e >= end || m.local.dataFrom(e, end) != e {
			break
		}
	}
	return min(e, end)
}
