//go:build linux

package fabric_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

const benchPages = 16384 // 64 MiB: beyond the caches, like guest RAM

var benchBatches = []int{1, 16, 256}

// randomBatch points the ranges at random whole pages of [0, pages).
func randomPages(rng *rand.Rand, batch []physmem.Range, pages int) {
	for i := range batch {
		batch[i].Addr = uint64(rng.IntN(pages)) << 12
	}
}

func newBatch(n int) []physmem.Range {
	batch := make([]physmem.Range, n)
	for i := range batch {
		batch[i].Buf = make([]byte, fabric.PageSize)
	}
	return batch
}

func benchRead(b *testing.B, m *fabric.Memory, pages, n int) {
	batch := newBatch(n)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(int64(n) * fabric.PageSize)
	b.ResetTimer()
	for b.Loop() {
		randomPages(rng, batch, pages)
		if err := m.ReadPhys(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pages/s")
}

// BenchmarkMemoryLocal reads random resident pages through Memory (the
// SIGBUS view) beside a bare copy() from a mapping of the same memfd.
func BenchmarkMemoryLocal(b *testing.B) {
	vm := newFakeVM(b, stampedContent(benchPages), 1, 1)
	m := vm.memory(b, fabric.MemoryConfig{})
	b.Logf("local reads by %s", m.LocalMode())
	mem, err := unix.Mmap(int(vm.ro.Fd()), 0, benchPages*fabric.PageSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Munmap(mem) })
	readAllB(b, m, benchPages) // map every page in both, as a running IDS has
	sink := 0
	for off := 0; off < len(mem); off += fabric.PageSize {
		sink += int(mem[off])
	}
	_ = sink
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("memory/batch=%d", n), func(b *testing.B) { benchRead(b, m, benchPages, n) })
		b.Run(fmt.Sprintf("bare/batch=%d", n), func(b *testing.B) {
			batch := newBatch(n)
			rng := rand.New(rand.NewPCG(1, 2))
			b.SetBytes(int64(n) * fabric.PageSize)
			for b.Loop() {
				randomPages(rng, batch, benchPages)
				for _, r := range batch {
					copy(r.Buf, mem[r.Addr:r.Addr+fabric.PageSize])
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pages/s")
		})
	}
}

func readAllB(b *testing.B, m *fabric.Memory, pages int) {
	buf := make([]byte, pages<<12)
	if err := m.ReadPhys([]physmem.Range{{Addr: 0, Buf: buf}}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkMemoryRemote reads random remote pages by proxy beside the raw
// transport (an in-process MemTransport, so what remains is Memory's own
// cost), and adaptive cache hits.
func BenchmarkMemoryRemote(b *testing.B) {
	const pages = 4096
	vm := newFakeVM(b, stampedContent(pages), 1, pages)
	for g := range pages {
		if err := vm.pageOut(fabric.GFN(g), 0); err != nil {
			b.Fatal(err)
		}
	}
	proxy := vm.memory(b, fabric.MemoryConfig{})
	adaptive := vm.memory(b, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
	readAllB(b, adaptive, pages)
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("proxy/batch=%d", n), func(b *testing.B) { benchRead(b, proxy, pages, n) })
		b.Run(fmt.Sprintf("transport/batch=%d", n), func(b *testing.B) {
			ios := make([]fabric.SlotIO, n)
			for i := range ios {
				ios[i].Buf = make([]byte, fabric.PageSize)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.SetBytes(int64(n) * fabric.PageSize)
			for b.Loop() {
				for i := range ios {
					ios[i].Slot = rng.Uint64N(pages)
				}
				if err := vm.trs[0].ReadSlots(b.Context(), ios); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "pages/s")
		})
		b.Run(fmt.Sprintf("adaptive-hit/batch=%d", n), func(b *testing.B) { benchRead(b, adaptive, pages, n) })
	}
}

// BenchmarkMemoryScanRemote reads every page of a VM whose pages are all
// remote, in scan-sized batches: proxy, adaptive with a cold cache (each
// iteration a new Memory: the first scan, which fills the cache) and
// adaptive with a warm one (the repeated scan).
func BenchmarkMemoryScanRemote(b *testing.B) {
	const pages = 8192
	vm := newFakeVM(b, stampedContent(pages), 1, pages)
	for g := range pages {
		if err := vm.pageOut(fabric.GFN(g), 0); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, pages*fabric.PageSize)
	scan := func(b *testing.B, m *fabric.Memory) {
		for off := 0; off < len(buf); off += 4096 * fabric.PageSize {
			if err := m.ReadPhys([]physmem.Range{{Addr: uint64(off), Buf: buf[off : off+4096*fabric.PageSize]}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("proxy", func(b *testing.B) {
		m := vm.memory(b, fabric.MemoryConfig{})
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			scan(b, m)
		}
	})
	b.Run("adaptive-cold", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			b.StopTimer()
			m := vm.memory(b, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
			b.StartTimer()
			scan(b, m)
			b.StopTimer()
			m.Close()
			b.StartTimer()
		}
	})
	b.Run("adaptive-warm", func(b *testing.B) {
		m := vm.memory(b, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
		scan(b, m)
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			scan(b, m)
		}
	})
}
