//go:build !linux

package fabric

import "github.com/vmemtrans/vmemtrans/introspect/physmem"

// visitView is never reached without a local view (Linux only).
func (m *Memory) visitView(seg physmem.Segment, visit func(physmem.Segment) bool) (more, faulted bool) {
	return visit(seg), false
}
