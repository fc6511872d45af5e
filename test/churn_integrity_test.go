//go:build linux

package test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"context"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/kvmhost"
)

// TestChurnIntegrity reads a split real guest through fabric.Memory, by
// every method at once, while the synthetic vCPUs stamp the guest's free
// pages and self paging keeps exchanging pages, and checks every page read:
// a page the workload may write must be its image content or a whole stamp
// of its own frame; any other page must equal the image.
func TestChurnIntegrity(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a million pages; not in -short")
	}
	s := startSplit(t, "linux-6.1-clean", 2, 25, kvmhost.WorkloadConfig{Threads: 2, WriteRatio: 0.5, HotSetPages: 4096, Seed: 7})
	var gfns []fabric.GFN
	for _, r := range s.layout {
		for g := fabric.GFNOf(r.Start); g < fabric.GFNOf(r.End); g++ {
			gfns = append(gfns, g)
		}
	}
	const target = 1_000_000
	var reads, lent, mismatches, torn, failed atomic.Int64
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() { // self paging: exchange random pages all along
		defer churn.Done()
		rng := rand.New(rand.NewPCG(1, 1))
		batch := make([]fabric.GFN, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range batch {
				batch[i] = gfns[rng.IntN(len(gfns))]
			}
			s.rt.MakeResident(context.Background(), batch)
		}
	}()
	var readers sync.WaitGroup
	var firstBad atomic.Value
	for i, m := range []fabric.Method{fabric.MethodProxy, fabric.MethodAdaptive, fabric.MethodSelf, fabric.MethodProxy} {
		mem := s.memory(t, m, 64<<20)
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			want := make([]byte, fabric.PageSize)
			batch := make([]physmem.Range, 64)
			for j := range batch {
				batch[j].Buf = make([]byte, fabric.PageSize)
			}
			for reads.Load() < target {
				for j := range batch {
					batch[j].Addr = gfns[rng.IntN(len(gfns))].Addr()
				}
				_ = mem.ReadPhys(batch)
				for _, r := range batch {
					reads.Add(1)
					if r.Err != nil {
						failed.Add(1)
						firstBad.CompareAndSwap(nil, fmt.Sprintf("%s read of %#x: %v", m, r.Addr, r.Err))
						continue
					}
					g := fabric.GFNOf(r.Addr)
					s.f.img.ReadPhys([]physmem.Range{{Addr: r.Addr, Buf: want}})
					switch {
					case bytes.Equal(r.Buf, want):
					case s.free[g] && kvmhost.VerifyStamp(g, r.Buf):
					case s.free[g] && kvmhost.IsStamped(r.Buf):
						torn.Add(1) // copied while the workload rewrote it: the stamp rule says read again
					default:
						mismatches.Add(1)
						firstBad.CompareAndSwap(nil, fmt.Sprintf("%s read of %#x: content differs (free page %v)", m, r.Addr, s.free[g]))
					}
				}
			}
		}()
	}
	// A scanner's reader: random spans lent in place (adaptive), each page
	// shown checked like the others; a retried segment's checks are void.
	lendMem := s.memory(t, fabric.MethodAdaptive, 64<<20)
	readers.Add(1)
	go func() {
		defer readers.Done()
		rng := rand.New(rand.NewPCG(5, 9))
		want := make([]byte, fabric.PageSize)
		zero := make([]byte, fabric.PageSize)
		for reads.Load() < target && lent.Load() < target/4 { // the copying readers keep their share
			g := gfns[rng.IntN(len(gfns)-64)]
			var last [3]int64 // reads, mismatches, torn of the segment before
			var tally [3]int64
			err := lendMem.LendPhys(g.Addr(), 64*fabric.PageSize, func(seg physmem.Segment) bool {
				if seg.Retry {
					for i := range tally {
						tally[i] -= last[i]
					}
				}
				var cur [3]int64
				defer func() { last = cur; tally[0], tally[1], tally[2] = tally[0]+cur[0], tally[1]+cur[1], tally[2]+cur[2] }()
				if seg.Err != nil {
					if !errors.Is(seg.Err, physmem.ErrOutOfRange) {
						failed.Add(1)
						firstBad.CompareAndSwap(nil, fmt.Sprintf("lent read of %#x: %v", seg.Addr, seg.Err))
					}
					return true
				}
				for off := uint64(0); off < seg.Len; off += fabric.PageSize {
					page := zero
					if !seg.Zero {
						page = seg.Data[off : off+fabric.PageSize]
					}
					g := fabric.GFNOf(seg.Addr + off)
					s.f.img.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: want}})
					cur[0]++
					switch {
					case bytes.Equal(page, want):
					case s.free[g] && kvmhost.VerifyStamp(g, page):
					case s.free[g] && kvmhost.IsStamped(page):
						cur[2]++
					default:
						cur[1]++
						firstBad.CompareAndSwap(nil, fmt.Sprintf("lent read of %#x: content differs (free page %v, zero %v)", g.Addr(), s.free[g], seg.Zero))
					}
				}
				return true
			})
			if err != nil && !errors.Is(err, physmem.ErrPartial) {
				failed.Add(1)
				firstBad.CompareAndSwap(nil, fmt.Sprintf("lend at %#x: %v", g.Addr(), err))
			}
			reads.Add(tally[0])
			lent.Add(tally[0])
			mismatches.Add(tally[1])
			torn.Add(tally[2])
		}
	}()
	readers.Wait()
	close(stop)
	churn.Wait()
	st := s.rt.Stats()
	fmt.Printf("reads=%d mismatches=%d\n", reads.Load(), mismatches.Load())
	t.Logf("reads=%d (lent in place %d) mismatches=%d failed=%d torn-by-workload=%d; runtime: %d faults, %d page-ins, %d page-outs, %d exchanged, %d workload writes",
		reads.Load(), lent.Load(), mismatches.Load(), failed.Load(), torn.Load(), st.Faults, st.PageIns, st.PageOuts, st.ExchangedPages, st.WorkloadWrites)
	if mismatches.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d mismatches, %d failed reads; first: %v", mismatches.Load(), failed.Load(), firstBad.Load())
	}
	if lent.Load() == 0 {
		t.Fatal("no page was lent in place")
	}
	if st.PageOuts == 0 || st.ExchangedPages == 0 || st.WorkloadWrites == 0 {
		t.Fatalf("no churn: %d page-outs, %d exchanged, %d workload writes", st.PageOuts, st.ExchangedPages, st.WorkloadWrites)
	}
}
