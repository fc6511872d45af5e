//go:build linux

package test

import (
	"bytes"
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
	var reads, mismatches, torn, failed atomic.Int64
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
	readers.Wait()
	close(stop)
	churn.Wait()
	st := s.rt.Stats()
	fmt.Printf("reads=%d mismatches=%d\n", reads.Load(), mismatches.Load())
	t.Logf("reads=%d mismatches=%d failed=%d torn-by-workload=%d; runtime: %d faults, %d page-ins, %d page-outs, %d exchanged, %d workload writes",
		reads.Load(), mismatches.Load(), failed.Load(), torn.Load(), st.Faults, st.PageIns, st.PageOuts, st.ExchangedPages, st.WorkloadWrites)
	if mismatches.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d mismatches, %d failed reads; first: %v", mismatches.Load(), failed.Load(), firstBad.Load())
	}
	if st.PageOuts == 0 || st.ExchangedPages == 0 || st.WorkloadWrites == 0 {
		t.Fatalf("no churn: %d page-outs, %d exchanged, %d workload writes", st.PageOuts, st.ExchangedPages, st.WorkloadWrites)
	}
}
