package kernel

import (
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
)

// BenchmarkProbeSlide is the CR3 path: 512 candidate slides translated and
// read in one batch, on a fresh translator (cold cache) each time.
func BenchmarkProbeSlide(b *testing.B) {
	g := bootGuest(b, paging.FourLevel, 0x5000000, 0x1c600000)
	r := image.NewBytes(g.mem)
	for b.Loop() {
		if s, err := probeSlide(paging.New(r, g.cr3, paging.FourLevel), g.l, slideHint{}); err != nil || s != g.slide {
			b.Fatal(s, err)
		}
	}
}

// BenchmarkNewByScan is the register-free path over a 192 MiB guest.
func BenchmarkNewByScan(b *testing.B) {
	g := bootGuest(b, paging.FourLevel, 0x5000000, 0x1c600000)
	r := image.NewBytes(g.mem)
	_, p := realKernel(b)
	b.SetBytes(int64(r.Size()))
	for b.Loop() {
		if _, err := New(r, p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
