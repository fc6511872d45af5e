package fabric

import (
	"fmt"
	"time"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

var _ physmem.Lender = (*Memory)(nil)

// lendPages is how many pages one round of LendPhys classifies at most:
// their words are loaded together, and the pages it cannot show in place
// are read in one ReadPhys (one transport batch per sub-host, which the
// transport pipelines). Rounds start at lendFirstPages and double, so the
// first search starts early and the fetches of later rounds stream. The
// lendDepth round buffers are the memory a one-shot scan writes fresh: on
// a host that backs memory lazily that costs more than the rounds it saves
// (4 MiB rounds: a one-shot scan by proxy 0.066 s to 0.052 s, against
// 16 MiB), so a Memory faults them in as it opens.
const (
	lendPages      = 1024
	lendFirstPages = 256
	lendDepth      = 3 // rounds at once: one shown, two being prepared
)

// How a page of a lend round is shown.
const (
	lendCopy   uint8 = iota // read by ReadPhys into the round's buffer
	lendLocal               // in place, from the local view
	lendCached              // in place, from the adaptive cache
	lendZero                // a frame never written: a Zero segment
)

// lendRound is the scratch of one round, reused across calls.
type lendRound struct {
	a, stop uint64 // the round's addresses
	np      int    // its pages
	kinds   []uint8
	words   []Word
	slots   []int32    // the cache entries of lendCached pages
	vec     []byte     // residency of the round's frames in guest RAM
	loaded  time.Time  // no later than the word loads of the round
	fills   []pageFill // the round's fetches, for the adaptive cache
	ranges  []physmem.Range
	buf     hugemem.Buffer // page k of the round at buf.B[k*PageSize:]
}

// LendPhys implements physmem.Lender. Pages held here are shown in place
// from the local view, and pages of the adaptive cache from the cache:
// neither is copied. The read protocol holds as for ReadPhys: a page's word
// is loaded before it is shown and reloaded after, and a page whose word
// changed (or whose view faulted: it moved away) is read again by ReadPhys
// and shown with Retry. Every other page (remote for proxy and self, cache
// misses, never-written frames, ranges off the layout) is read by one
// ReadPhys per round, with its error if it fails.
func (m *Memory) LendPhys(addr, n uint64, visit func(physmem.Segment) bool) error {
	end := addr + n
	if end < addr {
		end = ^uint64(0)
	}
	failed := 0
	for a := addr; a < end; {
		i := 0
		for i < len(m.layout) && m.layout[i].End <= a {
			i++
		}
		if i == len(m.layout) || m.layout[i].Start > a {
			gapEnd := end
			if i < len(m.layout) {
				gapEnd = min(end, m.layout[i].Start)
			}
			failed++
			if !visit(physmem.Segment{Addr: a, Len: gapEnd - a, Err: fmt.Errorf("read %#x+%d: %w", a, gapEnd-a, physmem.ErrOutOfRange)}) {
				break
			}
			a = gapEnd
			continue
		}
		stop := min(end, m.layout[i].End)
		more, f := m.lendRounds(a, stop, visit)
		failed += f
		if !more {
			break
		}
		a = stop
	}
	return lendError(failed)
}

// lendRounds shows [a, stop), which lies in one range of the layout, in
// rounds. While one round is shown, the next lendDepth-1 are classified and
// their copies read: a scan's search overlaps its fetches, and the fetches
// of two rounds are in flight together, so a sub-host gathers one round's
// pages while the other's are on the wire (one at a time, a fetch waited
// for the one before it: a scan by proxy read remote pages at 0.3 of what
// the transport streams).
func (m *Memory) lendRounds(a, stop uint64, visit func(physmem.Segment) bool) (more bool, failed int) {
	var rounds [lendDepth]*lendRound
	var done [lendDepth]chan struct{}
	for i := range rounds {
		rounds[i] = m.getLendRound()
	}
	defer func() {
		for i, lr := range rounds {
			if done[i] != nil {
				<-done[i] // a round still being prepared writes its buffer
			}
			m.putLendRound(lr)
		}
	}()
	next, pages := a, lendFirstPages
	start := func(i int) {
		done[i] = nil
		if next >= stop {
			return
		}
		lr := rounds[i]
		lr.span(next, stop, pages)
		next, pages = lr.stop, min(2*pages, lendPages)
		ch := make(chan struct{})
		done[i] = ch
		go func() { defer close(ch); m.prepare(lr) }()
	}
	for i := range rounds {
		start(i)
	}
	for i := 0; done[i] != nil; i = (i + 1) % lendDepth {
		<-done[i]
		done[i] = nil
		more, f := m.show(rounds[i], visit)
		if m.cache != nil {
			m.cache.putFills(rounds[i].fills)
		}
		failed += f
		if !more {
			return false, failed
		}
		start(i)
	}
	return true, failed
}

func lendError(failed int) error {
	if failed > 0 {
		return fmt.Errorf("fabric memory: %d segments failed: %w", failed, physmem.ErrPartial)
	}
	return nil
}

// span makes lr the round from a: up to pages pages, ending by limit.
func (lr *lendRound) span(a, limit uint64, pages int) {
	lr.a, lr.stop = a, min(limit, a&^(PageSize-1)+uint64(pages)*PageSize)
	lr.np = int(GFNOf(lr.stop-1)-GFNOf(a)) + 1
}

// pageSpan is the part of [a, stop) in page k of a round starting at a.
func pageSpan(a, stop uint64, k int) (lo, hi uint64) {
	page := (GFNOf(a) + GFN(k)).Addr()
	return max(a, page), min(stop, page+PageSize)
}

// prepare classifies the pages of round lr and reads those it cannot
// show in place, in one ReadPhys.
func (m *Memory) prepare(lr *lendRound) {
	a, stop, np := lr.a, lr.stop, lr.np
	lr.kinds, lr.words, lr.vec = grow(lr.kinds, np), grow(lr.words, np), grow(lr.vec, np)
	m.classify(lr, a, stop, np)
	lr.ranges = lr.ranges[:0]
	for k := range np {
		if lr.kinds[k] == lendCopy {
			lr.ranges = append(lr.ranges, lr.copyRange(a, stop, k))
		}
	}
	lr.fills = lr.fills[:0]
	if len(lr.ranges) > 0 {
		// Each range carries its error. Fetched pages go into the cache
		// after the round is shown, by the goroutine showing it, so the
		// next round's fetch does not wait for the copies.
		_ = m.readPhys(lr.ranges, &lr.fills)
	}
}

// show shows the prepared round lr; more is false once visit said stop,
// failed counts segments shown with an error.
func (m *Memory) show(lr *lendRound, visit func(physmem.Segment) bool) (more bool, failed int) {
	a, stop, np := lr.a, lr.stop, lr.np
	r := 0 // next range of lr.ranges
	for k := 0; k < np; {
		j := k + 1
		switch lr.kinds[k] {
		case lendLocal:
			for j < np && lr.kinds[j] == lendLocal {
				j++
			}
			more = m.lendLocal(lr, a, stop, k, j, visit)
		case lendCached:
			for j < np && lr.kinds[j] == lendCached {
				j++
			}
			more = m.lendCached(lr, a, stop, k, j, visit)
		case lendZero:
			for j < np && lr.kinds[j] == lendZero {
				j++
			}
			lo, _ := pageSpan(a, stop, k)
			_, hi := pageSpan(a, stop, j-1)
			more = visit(physmem.Segment{Addr: lo, Len: hi - lo, Zero: true})
		default:
			// consecutive pages read well are one segment of the buffer
			for lr.ranges[r].Err == nil && j < np && lr.kinds[j] == lendCopy && lr.ranges[r+j-k].Err == nil {
				j++
			}
			if err := lr.ranges[r].Err; err != nil {
				lo, hi := pageSpan(a, stop, k)
				more = visit(physmem.Segment{Addr: lo, Len: hi - lo, Err: err})
				failed++
			} else {
				more = visit(lr.segment(a, stop, k, j, false))
			}
			r += j - k
		}
		if !more {
			return false, failed
		}
		k = j
	}
	return true, failed
}

// classify loads the word of every page of the round (which lies in the
// layout) and decides how each is shown. A local frame that guest RAM does
// not hold was never written (the runtime punches a page only after
// publishing its remote word): it is a Zero segment, read by no one.
func (m *Memory) classify(lr *lendRound, a, stop uint64, np int) {
	first := GFNOf(a)
	view := m.local.view
	lr.loaded = time.Now()
	lo, hi, remote := np, -1, false
	for k := range np {
		w := m.cfg.Locations.Load(first + GFN(k))
		lr.words[k] = w
		lr.kinds[k] = lendCopy
		switch {
		case w.State() == StateLocal && view != nil:
			lr.kinds[k] = lendLocal
			lo, hi = min(lo, k), k
		case w.State() == StateRemote && m.cache != nil:
			lr.kinds[k] = lendCached // if the cache has it: see below
			remote = true
		}
	}
	if hi >= 0 && m.local.resident((first+GFN(lo)).Addr(), lr.vec[lo:hi+1]) == nil {
		for k := lo; k <= hi; k++ {
			if lr.kinds[k] == lendLocal && lr.vec[k]&1 == 0 && m.cfg.Locations.Load(first+GFN(k)) == lr.words[k] {
				lr.kinds[k] = lendZero
			}
		}
	}
	if remote {
		lr.slots = grow(lr.slots, np)
		m.cache.keepHeld(first, lr.words[:np], lr.kinds[:np], lr.slots[:np], lendCached, lendCopy)
	}
}

// copyRange is the ReadPhys range of page k, in its place in the buffer.
func (lr *lendRound) copyRange(a, stop uint64, k int) physmem.Range {
	lo, hi := pageSpan(a, stop, k)
	off := k*PageSize + int(lo&(PageSize-1))
	return physmem.Range{Addr: lo, Buf: lr.buf.B[off : off+int(hi-lo)]}
}

// segment is pages [k, j) of the round as they stand in the buffer.
func (lr *lendRound) segment(a, stop uint64, k, j int, retry bool) physmem.Segment {
	lo, _ := pageSpan(a, stop, k)
	_, hi := pageSpan(a, stop, j-1)
	off := k*PageSize + int(lo&(PageSize-1))
	return physmem.Segment{Addr: lo, Len: hi - lo, Data: lr.buf.B[off : off+int(hi-lo)], Retry: retry}
}

// lendLocal shows local pages [k, j) in place, then checks that none
// moved; if one did, or the view faulted, the run is read again by
// ReadPhys and shown with Retry.
func (m *Memory) lendLocal(lr *lendRound, a, stop uint64, k, j int, visit func(physmem.Segment) bool) bool {
	lo, _ := pageSpan(a, stop, k)
	_, hi := pageSpan(a, stop, j-1)
	more, faulted := m.visitView(physmem.Segment{Addr: lo, Len: hi - lo, Data: m.local.view.mem[lo:hi]}, visit)
	moved := 0
	first := GFNOf(a)
	for i := k; i < j; i++ {
		if m.cfg.Locations.Load(first+GFN(i)) != lr.words[i] {
			moved++
		}
	}
	if !faulted && moved == 0 {
		m.stats.local.Add(uint64(j - k))
		return more
	}
	m.stats.retries.Add(uint64(max(moved, 1)))
	return m.lendAgain(lr, a, stop, k, j, visit)
}

// lendAgain reads pages [k, j) by ReadPhys and shows them, the first
// segment replacing the one shown before (Retry).
func (m *Memory) lendAgain(lr *lendRound, a, stop uint64, k, j int, visit func(physmem.Segment) bool) bool {
	rs := lr.ranges[len(lr.ranges):]
	for i := k; i < j; i++ {
		rs = append(rs, lr.copyRange(a, stop, i))
	}
	_ = m.ReadPhys(rs)
	retry := true
	for i := k; i < j; {
		e := i + 1
		if err := rs[i-k].Err; err != nil {
			lo, hi := pageSpan(a, stop, i)
			if !visit(physmem.Segment{Addr: lo, Len: hi - lo, Err: err, Retry: retry}) {
				return false
			}
		} else {
			for e < j && rs[e-k].Err == nil {
				e++
			}
			if !visit(lr.segment(a, stop, i, e, retry)) {
				return false
			}
		}
		retry, i = false, e
	}
	return true
}

// lendCached shows pages [k, j) from the adaptive cache, one segment each,
// under one hold of the cache; a page the cache let go since the round
// began is read by ReadPhys.
func (m *Memory) lendCached(lr *lendRound, a, stop uint64, k, j int, visit func(physmem.Segment) bool) bool {
	first := GFNOf(a)
	for k < j {
		var hits uint64
		next, more := m.cache.lendRun(first+GFN(k), lr.words[k:j], lr.slots[k:j], lr.loaded, func(i, n int, pages []byte) bool {
			lo, _ := pageSpan(a, stop, k+i)
			_, hi := pageSpan(a, stop, k+i+n-1)
			off := lo & (PageSize - 1)
			hits += uint64(n)
			return visit(physmem.Segment{Addr: lo, Len: hi - lo, Data: pages[off : off+(hi-lo)]})
		})
		m.stats.hits.Add(hits)
		if !more {
			return false
		}
		k += next
		if k == j {
			break
		}
		// page k is gone from the cache: nothing of it was shown yet
		if !m.lendAgain(lr, a, stop, k, k+1, func(s physmem.Segment) bool {
			s.Retry = false
			return visit(s)
		}) {
			return false
		}
		k++
	}
	return true
}

func (m *Memory) getLendRound() *lendRound {
	return &lendRound{buf: m.lendSpare.Get(lendPages * PageSize)}
}

func (m *Memory) putLendRound(lr *lendRound) {
	m.lendSpare.Put(lr.buf)
}
