package paging_test

import (
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/paging/pagingtest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// benchSpace maps 4 MiB of kernel VA with 4 KiB pages onto scattered frames.
func benchSpace(b *testing.B) (*pagingtest.Builder, []uint64) {
	bl := pagingtest.NewBuilder(paging.FourLevel, 64*1024*1024, 48*1024*1024)
	vas := make([]uint64, 1024)
	for i := range vas {
		va := uint64(kernText) + uint64(i)*4096
		if err := bl.Map(va, uint64((i*7919)%8192)*4096, paging.PageSize4K); err != nil {
			b.Fatal(err)
		}
		vas[i] = va + 0x18
	}
	return bl, vas
}

func BenchmarkTranslateCached(b *testing.B) {
	bl, vas := benchSpace(b)
	tr := paging.New(bl.Reader(), bl.CR3(), paging.FourLevel)
	if _, err := tr.Translate(vas); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.Translate(vas); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vas)), "ns/addr")
}

func BenchmarkTranslateUncached1k(b *testing.B) {
	bl, vas := benchSpace(b)
	tr := paging.New(bl.Reader(), bl.CR3(), paging.FourLevel)
	for b.Loop() {
		tr.Invalidate()
		if _, err := tr.Translate(vas); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vas)), "ns/addr")
}

// BenchmarkTranslateUncached1kRemote models remote memory with 20 µs per
// batch: batching keeps a 1k-address walk at four round trips.
func BenchmarkTranslateUncached1kRemote(b *testing.B) {
	bl, vas := benchSpace(b)
	tr := paging.New(physmem.WithLatency(bl.Reader(), 20*time.Microsecond), bl.CR3(), paging.FourLevel)
	for b.Loop() {
		tr.Invalidate()
		if _, err := tr.Translate(vas); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadVirt(b *testing.B) {
	bl, _ := benchSpace(b)
	tr := paging.New(bl.Reader(), bl.CR3(), paging.FourLevel)
	buf := make([]byte, 1024*4096)
	ranges := []physmem.Range{{Addr: kernText, Buf: buf}}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if err := tr.ReadVirt(ranges); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadVirtSmall(b *testing.B) {
	bl, vas := benchSpace(b)
	tr := paging.New(bl.Reader(), bl.CR3(), paging.FourLevel)
	ranges := make([]physmem.Range, len(vas))
	for i, va := range vas {
		ranges[i] = physmem.Range{Addr: va, Buf: make([]byte, 64)}
	}
	b.SetBytes(int64(64 * len(ranges)))
	for b.Loop() {
		if err := tr.ReadVirt(ranges); err != nil {
			b.Fatal(err)
		}
	}
}
