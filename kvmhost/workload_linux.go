//go:build linux

package kvmhost

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// pageWords is the guest page g as words of the registered mapping. Only
// the runtime's locked threads may touch it.
func (r *Runtime) pageWords(g fabric.GFN) *[stampWords]uint64 {
	return (*[stampWords]uint64)(unsafe.Pointer(&r.mem[uint64(g)<<fabric.PageShift]))
}

// stampPage writes the stamp of (g, seq) into guest memory, head first, so
// a reader copying the page meanwhile sees a torn stamp.
func (r *Runtime) stampPage(g fabric.GFN, seq uint64) {
	p := r.pageWords(g)
	stampWordsInto(g, seq, func(i int, w uint64) { p[i] = w })
}

// copyOut copies guest page g into dst with word loads. Guest memory is
// never touched by copy() (runtime memmove): a thread faulting inside
// runtime assembly cannot be preempted, so it would hold up a garbage
// collection's stop-the-world that the fault handler, allocating, waits for
// — a deadlock. A fault in compiled Go code is preempted and retried. For
// the same reason no sync/atomic: under the race detector those run in C.
func (r *Runtime) copyOut(g fabric.GFN, dst []byte) {
	p := r.pageWords(g)
	for i := range stampWords {
		binary.LittleEndian.PutUint64(dst[8*i:], p[i])
	}
}

// touchRead reads one word of guest page g.
func (r *Runtime) touchRead(g fabric.GFN, word int) uint64 {
	return r.pageWords(g)[word%stampWords]
}

// startWorkload starts the vCPU threads. Thread t writes only the writable
// frames with index ≡ t (mod Threads), so no two threads stamp one page and
// every page's stamps carry increasing sequence numbers.
func (r *Runtime) startWorkload(ctx context.Context) {
	w := r.wl
	if w.Threads == 0 {
		return
	}
	hotFrac := w.HotFraction
	if hotFrac == 0 {
		hotFrac = 0.9
	}
	seedRng := rand.New(rand.NewPCG(w.Seed, 0x5eed))
	reads := append([]fabric.GFN(nil), r.backed...)
	seedRng.Shuffle(len(reads), func(i, j int) { reads[i], reads[j] = reads[j], reads[i] })
	// The fault handler already runs and changes flags under r.mu.
	var writable []fabric.GFN
	r.mu.Lock()
	for _, g := range w.WritableGFNs {
		if uint64(g) < uint64(len(r.flags)) && r.flags[g]&flagBacked != 0 {
			writable = append(writable, g)
		}
	}
	r.mu.Unlock()
	seedRng.Shuffle(len(writable), func(i, j int) { writable[i], writable[j] = writable[j], writable[i] })
	for t := range w.Threads {
		var mine []fabric.GFN
		for i := t; i < len(writable); i += w.Threads {
			mine = append(mine, writable[i])
		}
		r.workWG.Add(1)
		go r.vcpu(ctx, t, reads, mine, hotFrac)
	}
}

func (r *Runtime) vcpu(ctx context.Context, t int, reads, writes []fabric.GFN, hotFrac float64) {
	defer r.workWG.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := r.wl
	rng := rand.New(rand.NewPCG(w.Seed, uint64(t)+1))
	hot := func(set []fabric.GFN) fabric.GFN {
		n := len(set)
		if w.HotSetPages > 0 && w.HotSetPages < n && rng.Float64() < hotFrac {
			n = w.HotSetPages
		}
		return set[rng.IntN(n)]
	}
	var interval time.Duration
	if w.Rate > 0 {
		interval = time.Duration(float64(time.Second) / w.Rate)
	}
	var seq, sum uint64
	defer func() { readSink.Add(sum) }()
	next := time.Now()
	for op := 0; ; op++ {
		if op%64 == 0 {
			select {
			case <-r.stop:
				return
			case <-ctx.Done():
				return
			default:
			}
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		if len(writes) > 0 && rng.Float64() < w.WriteRatio {
			g := hot(writes)
			seq++
			r.stampPage(g, seq)
			atomic.StoreUint32(&r.accessed[g], 1)
			r.c.wlWrites.Add(1)
			continue
		}
		g := hot(reads)
		sum ^= r.touchRead(g, rng.IntN(stampWords))
		atomic.StoreUint32(&r.accessed[g], 1)
		r.c.wlReads.Add(1)
	}
}

// readSink keeps the workload's reads from being optimised away.
var readSink atomic.Uint64
