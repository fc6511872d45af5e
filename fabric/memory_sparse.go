package fabric

import "github.com/vmemtrans/vmemtrans/introspect/physmem"

var _ physmem.Sparse = (*Memory)(nil)

// NextData implements physmem.Sparse: the first backed range of the layout
// at or after addr. The holes between ranges are not guest memory, so a
// scan skips them instead of asking for pages that can only fail.
func (m *Memory) NextData(addr uint64) (start, end uint64, ok bool) {
	for _, r := range m.layout {
		if r.End > addr {
			return max(addr, r.Start), r.End, true
		}
	}
	return 0, 0, false
}
