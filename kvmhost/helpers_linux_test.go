//go:build linux

package kvmhost

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// sliceImage is a physmem.Reader over an in-memory image with a layout.
type sliceImage struct {
	mem    []byte
	layout []fabric.PhysRange
}

func (s *sliceImage) Size() uint64 { return uint64(len(s.mem)) }

func (s *sliceImage) ReadPhys(rs []physmem.Range) error {
	var bad int
	for i := range rs {
		r := &rs[i]
		r.Err = nil
		ok := false
		for _, l := range s.layout {
			if r.Addr >= l.Start && r.Addr+uint64(len(r.Buf)) <= l.End {
				ok = true
			}
		}
		if !ok {
			r.Err = fmt.Errorf("read %#x: %w", r.Addr, physmem.ErrOutOfRange)
			bad++
			continue
		}
		copy(r.Buf, s.mem[r.Addr:])
	}
	if bad > 0 {
		return physmem.ErrPartial
	}
	return nil
}

// testImage is pages of content with a hole in the middle: frames [0,a)
// and [a+hole, a+hole+b) are backed; each page holds text naming its frame.
func testImage(a, hole, b int) *sliceImage {
	total := a + hole + b
	img := &sliceImage{mem: make([]byte, total*fabric.PageSize)}
	switch {
	case b == 0:
		img.layout = []fabric.PhysRange{{Start: 0, End: uint64(a) * fabric.PageSize}}
	case hole == 0:
		img.layout = []fabric.PhysRange{{Start: 0, End: uint64(total) * fabric.PageSize}}
	default:
		img.layout = []fabric.PhysRange{
			{Start: 0, End: uint64(a) * fabric.PageSize},
			{Start: uint64(a+hole) * fabric.PageSize, End: uint64(total) * fabric.PageSize},
		}
	}
	for g := range total {
		p := img.mem[g*fabric.PageSize : (g+1)*fabric.PageSize]
		for off := 0; off < len(p); off += 32 {
			copy(p[off:], fmt.Sprintf("gfn %08x off %04x ....\n", g, off))
		}
	}
	return img
}

func (s *sliceImage) page(g fabric.GFN) []byte {
	return s.mem[g.Addr() : g.Addr()+fabric.PageSize]
}

func memSubhosts(layout []fabric.PhysRange, n int) []fabric.Transport {
	var ts []fabric.Transport
	for range n {
		ts = append(ts, fabrictest.NewMemTransport(SlotsNeeded(layout, n), 0))
	}
	return ts
}

// newTestRuntime splits img over subs and starts the fault handler.
func newTestRuntime(t testing.TB, img *sliceImage, subs []fabric.Transport, pct int, wl WorkloadConfig) *Runtime {
	t.Helper()
	rt, err := New(context.Background(), Config{Memory: img, Layout: img.layout, Subhosts: subs, ResidentPct: pct, Workload: wl})
	if errors.Is(err, uffd.ErrUnsupported) {
		t.Skipf("userfaultfd unavailable (%v): allow vm.unprivileged_userfaultfd=1 or run as root", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rt
}

// onGuestThread runs fn on a locked OS thread, the only kind that may touch
// guest memory, and waits for it (at most a minute).
func onGuestThread(t testing.TB, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("guest thread stuck for a minute")
	}
}

// readGuest copies guest page g out of the mapping; call it on a guest
// thread. Word loads, not copy(): see copyOut.
func (r *Runtime) readGuest(g fabric.GFN, dst []byte) { r.copyOut(g, dst) }

// evictNow pages out those of gs that are resident, as the clock would.
func (r *Runtime) evictNow(gs []fabric.GFN) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v []fabric.GFN
	for _, g := range gs {
		if r.flags[g]&flagResident != 0 {
			v = append(v, g)
		}
	}
	if len(v) == 0 {
		return 0
	}
	return r.pageOut(context.Background(), v)
}
