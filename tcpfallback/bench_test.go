package tcpfallback

import (
	"context"
	"fmt"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// BenchmarkReadSlots measures loopback page reads per batch shape; pages/s
// is reported as a metric, bytes/s via SetBytes.
func BenchmarkReadSlots(b *testing.B) {
	const slots = 16384
	for _, c := range []struct{ batch, inflight int }{{1, 1}, {16, 8}, {256, 2}, {1024, 4}} {
		b.Run(fmt.Sprintf("batch=%d/inflight=%d", c.batch, c.inflight), func(b *testing.B) {
			sh := startSubhost(b)
			tr := dialT(b, sh.Addr, "bench", Options{Slots: slots, InFlight: c.inflight, MaxBatch: 256})
			batch := make([]fabric.SlotIO, c.batch*c.inflight)
			for i := range batch {
				batch[i] = fabric.SlotIO{Slot: uint64(i*7919) % slots, Buf: make([]byte, fabric.PageSize)}
			}
			if err := tr.WriteSlots(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(batch) * fabric.PageSize))
			b.ResetTimer()
			for b.Loop() {
				if err := tr.ReadSlots(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "pages/s")
		})
	}
}

func BenchmarkWriteSlots(b *testing.B) {
	sh := startSubhost(b)
	tr := dialT(b, sh.Addr, "bench", Options{Slots: 4096, InFlight: 2})
	batch := make([]fabric.SlotIO, 512)
	for i := range batch {
		batch[i] = fabric.SlotIO{Slot: uint64(i), Buf: page(uint64(i), 1)}
	}
	b.SetBytes(int64(len(batch) * fabric.PageSize))
	for b.Loop() {
		if err := tr.WriteSlots(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "pages/s")
}
