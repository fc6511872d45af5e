package fabric

import (
	"fmt"
	"time"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

var _ physmem.Lender = (*Memory)(nil)

// A round of LendPhys classifies up to lendPages pages: their words are
// loaded together, and the pages it cannot show in place (remote for proxy
// and self, cache misses) are read in one ReadPhys, one transport batch per
// sub-host, which the transport pipelines. A round ends early once it holds
// lendCopyPages such pages, so every fetch is a full batch however sparse
// the remote pages lie: with rounds of a fixed 1,024 pages a scan by proxy
// fetched about 200 pages a round, and read remote pages at half the rate
// the same sub-host streams to bench fetch. Rounds start at lendFirstPages
// and double, so the first search starts early and the fetches of later
// rounds stream. The lendDepth round buffers, lendCopyPages each, are the
// memory a one-shot scan writes fresh: a Memory faults them in as it opens.
const (
	lendPages      = 8192
	lendCopyPages  = 512
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
	bufAt   []int32        // page k, if read by ReadPhys, is page bufAt[k] of buf
	buf     hugemem.Buffer // the pages read by ReadPhys, in order
	again   []byte         // where pages shown again are read, up to lendCopyPages
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
// rounds. A round is classified as it starts, which decides where it ends
// and so where the next one starts; while one round is shown, the copies
// of the next lendDepth-1 are read: a scan's search overlaps its fetches,
// and the fetches of two rounds are in flight together, so a sub-host
// gathers one round's pages while the other's are on the wire (one at a
// time, a fetch waited for the one before it: a scan by proxy read remote
// pages at 0.3 of what the transport streams).
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
		m.classify(lr) // it decides where the round ends
		next, pages = lr.stop, min(2*pages, lendPages)
		ch := make(chan struct{})
		done[i] = ch
		go func() { defer close(ch); m.fetchRound(lr) }()
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

// span makes lr the round from a: up to pages pages, ending by limit. A
// rest of less than half a round is taken in too (up to lendPages): a lend
// of a megabyte and a few bytes (a search's chunk and the overlap of its
// patterns) would otherwise end in a round of one page, a fetch of its own.
func (lr *lendRound) span(a, limit uint64, pages int) {
	end := a&^(PageSize-1) + uint64(pages)*PageSize
	if limit > end && limit-end < uint64(pages)*PageSize/2 && int(GFNOf(limit-1)-GFNOf(a)) < lendPages {
		end = limit
	}
	lr.a, lr.stop = a, min(limit, end)
	lr.np = int(GFNOf(lr.stop-1)-GFNOf(a)) + 1
}

// pageSpan is the part of [a, stop) in page k of a round starting at a.
func pageSpan(a, stop uint64, k int) (lo, hi uint64) {
	page := (GFNOf(a) + GFN(k)).Addr()
	return max(a, page), min(stop, page+PageSize)
}

// fetchRound reads the pages of the classified round lr that it cannot show in
// place, in one ReadPhys.
func (m *Memory) fetchRound(lr *lendRound) {
	a, stop, np := lr.a, lr.stop, lr.np
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
				more = visit(lr.segment(a, stop, k, j))
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
// layout) and decides how each is shown; the round ends before the page
// that would be its copy lendCopyPages+1. A local frame that guest RAM does
// not hold was never written (the runtime punches a page only after
// publishing its remote word): it is a Zero segment, read by no one.
func (m *Memory) classify(lr *lendRound) {
	a, np := lr.a, lr.np
	lr.kinds, lr.words, lr.vec = grow(lr.kinds, np), grow(lr.words, np), grow(lr.vec, np)
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
	if remote {
		lr.slots = grow(lr.slots, np)
		m.cache.keepHeld(first, lr.words[:np], lr.kinds[:np], lr.slots[:np], lendCached, lendCopy)
	}
	// The round ends before its copy that would not fit in the buffer.
	lr.bufAt = grow(lr.bufAt, np)
	copies := int32(0)
	for k := range np {
		if lr.kinds[k] != lendCopy {
			continue
		}
		if copies == lendCopyPages {
			lr.truncate(k)
			hi = min(hi, k-1)
			break
		}
		lr.bufAt[k] = copies
		copies++
	}
	if hi >= lo && m.local.resident((first+GFN(lo)).Addr(), lr.vec[lo:hi+1]) == nil {
		for k := lo; k <= hi; k++ {
			if lr.kinds[k] == lendLocal && lr.vec[k]&1 == 0 && m.cfg.Locations.Load(first+GFN(k)) == lr.words[k] {
				lr.kinds[k] = lendZero
			}
		}
	}
}

// truncate ends the round before its page k.
func (lr *lendRound) truncate(k int) {
	lr.np, lr.stop = k, (GFNOf(lr.a) + GFN(k)).Addr()
}

// copyRange is the ReadPhys range of page k, in its place in the buffer.
func (lr *lendRound) copyRange(a, stop uint64, k int) physmem.Range {
	lo, hi := pageSpan(a, stop, k)
	off := int(lr.bufAt[k])*PageSize + int(lo&(PageSize-1))
	return physmem.Range{Addr: lo, Buf: lr.buf.B[off : off+int(hi-lo)]}
}

// segment is pages [k, j) of the round, read by ReadPhys, as they stand in
// the buffer (one after another there too).
func (lr *lendRound) segment(a, stop uint64, k, j int) physmem.Segment {
	lo, _ := pageSpan(a, stop, k)
	_, hi := pageSpan(a, stop, j-1)
	off := int(lr.bufAt[k])*PageSize + int(lo&(PageSize-1))
	return physmem.Segment{Addr: lo, Len: hi - lo, Data: lr.buf.B[off : off+int(hi-lo)]}
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
// segment replacing the one shown before (Retry). They are read into a
// buffer of their own, lendCopyPages at a time: the round's buffer holds
// its copies, packed.
func (m *Memory) lendAgain(lr *lendRound, a, stop uint64, k, j int, visit func(physmem.Segment) bool) bool {
	if need := min(j-k, lendCopyPages) * PageSize; len(lr.again) < need {
		lr.again = make([]byte, need)
	}
	retry := true
	for c := k; c < j; c += lendCopyPages {
		e := min(j, c+lendCopyPages)
		rs := lr.ranges[len(lr.ranges):]
		for i := c; i < e; i++ {
			lo, hi := pageSpan(a, stop, i)
			off := (i-c)*PageSize + int(lo&(PageSize-1))
			rs = append(rs, physmem.Range{Addr: lo, Buf: lr.again[off : off+int(hi-lo)]})
		}
		_ = m.ReadPhys(rs)
		for i := c; i < e; {
			n := i + 1
			lo, hi := pageSpan(a, stop, i)
			seg := physmem.Segment{Addr: lo, Len: hi - lo, Err: rs[i-c].Err, Retry: retry}
			if seg.Err == nil {
				for n < e && rs[n-c].Err == nil {
					n++
				}
				_, hi = pageSpan(a, stop, n-1)
				off := (i-c)*PageSize + int(lo&(PageSize-1))
				seg.Len, seg.Data = hi-lo, lr.again[off:off+int(hi-lo)]
			}
			if !visit(seg) {
				return false
			}
			retry, i = false, n
		}
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
	lr, _ := m.lendScratch.Get().(*lendRound)
	if lr == nil {
		lr = new(lendRound)
	}
	lr.buf = m.lendSpare.Get(lendCopyPages * PageSize)
	return lr
}

func (m *Memory) putLendRound(lr *lendRound) {
	m.lendSpare.Put(lr.buf)
	lr.buf = hugemem.Buffer{}
	m.lendScratch.Put(lr)
}
