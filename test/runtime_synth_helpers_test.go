//go:build linux

package test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/kvmhost"
)

// splitImage is a synthetic guest image: two backed ranges around a hole,
// every page text naming its frame.
type splitImage struct {
	mem    []byte
	layout []fabric.PhysRange
}

func newSplitImage(a, hole, b int) *splitImage {
	total := a + hole + b
	img := &splitImage{
		mem: make([]byte, total*fabric.PageSize),
		layout: []fabric.PhysRange{
			{Start: 0, End: uint64(a) * fabric.PageSize},
			{Start: uint64(a+hole) * fabric.PageSize, End: uint64(total) * fabric.PageSize},
		},
	}
	for g := range total {
		p := img.mem[g*fabric.PageSize : (g+1)*fabric.PageSize]
		for off := 0; off < len(p); off += 32 {
			copy(p[off:], fmt.Sprintf("gfn %08x off %04x ....\n", g, off))
		}
	}
	return img
}

func (s *splitImage) Size() uint64 { return uint64(len(s.mem)) }

func (s *splitImage) ReadPhys(rs []physmem.Range) error {
	bad := 0
	for i := range rs {
		r := &rs[i]
		r.Err = fmt.Errorf("read %#x: %w", r.Addr, physmem.ErrOutOfRange)
		for _, l := range s.layout {
			if r.Addr >= l.Start && r.Addr+uint64(len(r.Buf)) <= l.End {
				copy(r.Buf, s.mem[r.Addr:])
				r.Err = nil
			}
		}
		if r.Err != nil {
			bad++
		}
	}
	if bad > 0 {
		return physmem.ErrPartial
	}
	return nil
}

func (s *splitImage) page(g fabric.GFN) []byte { return s.mem[g.Addr() : g.Addr()+fabric.PageSize] }

func (s *splitImage) backed() []fabric.GFN {
	var gs []fabric.GFN
	for _, l := range s.layout {
		for g := fabric.GFNOf(l.Start); g < fabric.GFNOf(l.End); g++ {
			gs = append(gs, g)
		}
	}
	return gs
}

// startSynthSplit splits img over subs with the runtime and starts it.
func startSynthSplit(t *testing.T, img *splitImage, subs []fabric.Transport, pct int, wl kvmhost.WorkloadConfig) *kvmhost.Runtime {
	t.Helper()
	rt, err := kvmhost.New(context.Background(), kvmhost.Config{
		Memory: img, Layout: img.layout, Subhosts: subs, ResidentPct: pct, Workload: wl,
	})
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

// synthReaderOf is a fabric.Memory over rt as an IDS process would open it: the
// read-only RAM memfd and a read-only mapping of the location map.
func synthReaderOf(t *testing.T, rt *kvmhost.Runtime, method fabric.Method) *fabric.Memory {
	t.Helper()
	ram, err := rt.RAMFile()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	lf, err := rt.LocationMapFile()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	view, err := fabric.OpenLocationMapReadOnly(int(lf.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { view.Close() })
	subs := map[uint8]fabric.Transport{}
	for i, tr := range rt.Subhosts() {
		subs[uint8(i)] = tr
	}
	m, err := fabric.NewMemory(fabric.MemoryConfig{
		RAM: ram, Locations: view, Layout: rt.Layout(), Subhosts: subs, Method: method, Exchanger: rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// synthReadPages reads the frames through m, one range per page.
func synthReadPages(m physmem.Reader, gs []fabric.GFN, buf []byte) []physmem.Range {
	rs := make([]physmem.Range, len(gs))
	for i, g := range gs {
		rs[i] = physmem.Range{Addr: g.Addr(), Buf: buf[i*fabric.PageSize : (i+1)*fabric.PageSize]}
	}
	_ = m.ReadPhys(rs)
	return rs
}
