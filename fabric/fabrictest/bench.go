package fabrictest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// benchSlots is the region the benchmarks read from: 64 MiB, larger than
// the caches, preloaded so that reads move real data.
const benchSlots = 16384

// RunBenchmarks measures read throughput of the Transports newPeer makes:
// random slots at batch sizes 1, 16 and 256, from one caller and from
// GOMAXPROCS parallel callers. It reports pages/s besides bytes/s.
func RunBenchmarks(b *testing.B, newPeer Factory) {
	p := newPeer(b, benchSlots)
	tr := p.Transport
	b.Cleanup(func() { tr.Close() })
	ctx := context.Background()
	for start := uint64(0); start < benchSlots; start += 256 {
		slots := make([]uint64, 256)
		for i := range slots {
			slots[i] = start + uint64(i)
		}
		if err := tr.WriteSlots(ctx, writeBatch(slots, 1)); err != nil {
			b.Fatalf("preload: %v", err)
		}
	}
	for _, size := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("read/batch=%d", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(size), 1))
			batch := readBatch(make([]uint64, size))
			b.SetBytes(int64(size) * fabric.PageSize)
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					batch[i].Slot = rng.Uint64N(benchSlots)
				}
				if err := tr.ReadSlots(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "pages/s")
		})
		b.Run(fmt.Sprintf("read/batch=%d/parallel", size), func(b *testing.B) {
			b.SetBytes(int64(size) * fabric.PageSize)
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
				batch := readBatch(make([]uint64, size))
				for pb.Next() {
					for i := range batch {
						batch[i].Slot = rng.Uint64N(benchSlots)
					}
					if err := tr.ReadSlots(ctx, batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}
