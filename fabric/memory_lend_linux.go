//go:build linux

package fabric

import (
	"runtime/debug"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// visitView shows seg, which lies in the local view, to visit while the
// goroutine turns memory faults into panics: a page that moves off this
// host while visit reads it faults (the runtime punched it), and the
// fault cuts visit short instead of killing the process.
func (m *Memory) visitView(seg physmem.Segment, visit func(physmem.Segment) bool) (more, faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			m.local.view.checkFault(r)
			m.stats.faults.Add(1)
			more, faulted = true, true
		}
	}()
	return visit(seg), false
}
