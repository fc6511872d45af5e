//go:build linux

package kvmhost

import (
	"context"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

const benchPages = 4096 // 16 MiB guest

// benchRuntime is a runtime over benchPages, half resident, on two
// in-process sub-hosts.
func benchRuntime(b *testing.B) *Runtime {
	img := testImage(benchPages, 0, 0)
	return newTestRuntime(b, img, memSubhosts(img.layout, 2), 50, WorkloadConfig{})
}

func (r *Runtime) framesIn(state fabric.State, n int) []fabric.GFN {
	var gs []fabric.GFN
	for _, g := range r.backed {
		if r.locs.Load(g).State() == state {
			gs = append(gs, g)
			if len(gs) == n {
				break
			}
		}
	}
	return gs
}

// BenchmarkPageIn: self paging of batches of remote pages (read slots,
// UFFDIO_COPY, words), with room made beforehand outside the timing.
func BenchmarkPageIn(b *testing.B) {
	for _, batch := range []int{1, 64, 256} {
		b.Run(itoa(batch), func(b *testing.B) {
			rt := benchRuntime(b)
			ctx := context.Background()
			var busy time.Duration
			pages := 0
			for b.Loop() {
				b.StopTimer()
				rt.evictNow(rt.framesIn(fabric.StateLocal, batch)) // room below the limit
				gs := rt.framesIn(fabric.StateRemote, batch)
				b.StartTimer()
				t0 := time.Now()
				for _, err := range rt.MakeResident(ctx, gs) {
					if err != nil {
						b.Fatal(err)
					}
				}
				busy += time.Since(t0)
				pages += len(gs)
			}
			b.ReportMetric(float64(pages)/busy.Seconds(), "pages/s")
		})
	}
}

// BenchmarkPageOut: eviction of runs of resident pages in the fence order
// (write-protect, pread, WriteSlots, words, punch, unprotect).
func BenchmarkPageOut(b *testing.B) {
	for _, batch := range []int{1, 64, 256} {
		b.Run(itoa(batch), func(b *testing.B) {
			rt := benchRuntime(b)
			ctx := context.Background()
			var busy time.Duration
			pages := 0
			for b.Loop() {
				b.StopTimer()
				gs := rt.framesIn(fabric.StateLocal, batch)
				b.StartTimer()
				t0 := time.Now()
				n := rt.evictNow(gs)
				busy += time.Since(t0)
				pages += n
				b.StopTimer()
				rt.MakeResident(ctx, rt.framesIn(fabric.StateRemote, batch)) // back to the limit
				b.StartTimer()
			}
			b.ReportMetric(float64(pages)/busy.Seconds(), "pages/s")
		})
	}
}

// BenchmarkFaultPageIn: one locked thread reads remote pages one by one,
// each a missing fault served by the handler (round trip, page-in, wake).
func BenchmarkFaultPageIn(b *testing.B) {
	rt := benchRuntime(b)
	var busy time.Duration
	pages := 0
	for b.Loop() {
		b.StopTimer()
		rt.evictNow(rt.framesIn(fabric.StateLocal, 256))
		gs := rt.framesIn(fabric.StateRemote, 256)
		b.StartTimer()
		onGuestThread(b, func() {
			t0 := time.Now()
			var sum uint64
			for _, g := range gs {
				sum += rt.touchRead(g, 0)
			}
			busy += time.Since(t0)
			readSink.Add(sum)
		})
		pages += len(gs)
	}
	b.ReportMetric(float64(pages)/busy.Seconds(), "pages/s")
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
