package fabric

import (
	"fmt"

	"sync"
	"sync/atomic"
	"time"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
)

// DefaultCacheBytes bounds the adaptive cache when MemoryConfig.CacheBytes is 0.
const DefaultCacheBytes = 256 << 20

// Validity of a cached page. A page held by a sub-host cannot change there,
// so a copy fetched under word W is right for as long as the word stays W.
// A word can come back to W only after 2^18 generation bumps (a full wrap,
// ending at the same sub-host and slot), which takes 2^16 round trips of
// that one frame between hosts. An entry is served only while its word has
// been observed unchanged at least every cacheTrust since the page was
// fetched, by the reads that use it and by a sweeper that loads the word of
// every entry every cacheSweep while the Memory is in use; an entry that
// went unobserved longer is stale for good. This rests on one bound: a
// frame cannot make 2^16 round trips within cacheTrust (1 s), i.e. one
// every 15 µs, each a userfaultfd page-in (a fault round trip alone is
// 11-19 µs) and an eviction of that same frame right after (a clock policy
// picks a frame just paged in last). The window is that wide because a
// loaded host stalls this process for a quarter of a second at times
// (measured here), and each stall longer than the window empties the cache.
const (
	cacheTrust = time.Second
	cacheSweep = 100 * time.Millisecond
	// cacheIdle stops the sweeper when no read has come for this long; the
	// entries then age out and are refetched on the next use.
	cacheIdle = 5 * time.Second
	// cacheGrowPages is how much more cache memory is made ready when a put
	// finds none left and no prefault is under way.
	cacheGrowPages = 4096
)

// cacheFill is a page fetched for the cache during a call, inserted once
// the read protocol has verified it (its word held still across the read).
type cacheFill struct {
	word    Word
	buf     []byte
	seen    time.Time // the recheck of word came after this
	inPlace bool      // buf is the caller's own: it outlives the call
}

// pageFill is a cacheFill of frame gfn whose put was deferred.
type pageFill struct {
	gfn GFN
	cacheFill
}

// putFills puts deferred fills, under one hold of the lock.
func (c *pageCache) putFills(fills []pageFill) {
	if len(fills) == 0 || c.closed.Load() {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range fills {
		c.putLocked(f.gfn, f.word, f.buf, c.at(f.seen), now)
	}
}

type cacheEnt struct {
	gfn  GFN
	word Word
	seen atomic.Int64 // ns since the cache's epoch: last observation of word, 0 for dead
	ref  atomic.Bool  // CLOCK reference bit
}

// pageCache is adaptive paging's main-host cache of remote pages keyed by
// (GFN, location word), bounded to a fixed number of pages and evicting by
// CLOCK (second chance). Lookups share a read lock; inserts take it alone.
type pageCache struct {
	locs      Locations
	capacity  int
	evictions *atomic.Uint64
	epoch     time.Time

	mu    sync.RWMutex
	index map[GFN]int32
	ents  []cacheEnt
	hand  int

	// mem is the cache's page memory, one huge-page reservation for the
	// whole capacity (page k at mem[k*PageSize:]). Pages below ready are
	// faulted in; puts only ever use those, so filling the cache costs a
	// read one copy per page and never a page fault.
	mem      []byte
	release  func()
	ready    atomic.Int64 // pages of mem faulted in
	faulting atomic.Bool  // a prefault goroutine runs

	lastUse  atomic.Int64
	sweeping atomic.Bool
	stop     chan struct{}
	done     sync.WaitGroup
	closed   atomic.Bool
}

func newPageCache(bytes int64, locs Locations, evictions *atomic.Uint64) (*pageCache, error) {
	capacity := max(int(bytes/PageSize), 1)
	mem, release, err := hugemem.Map(capacity * PageSize)
	if err != nil {
		return nil, fmt.Errorf("adaptive cache memory: %w", err)
	}
	return &pageCache{
		locs: locs, capacity: capacity, evictions: evictions, epoch: time.Now(),
		index: make(map[GFN]int32), mem: mem, release: release, stop: make(chan struct{}),
	}, nil
}

func (c *pageCache) now() int64 { return max(int64(time.Since(c.epoch)), 1) }

func (c *pageCache) at(t time.Time) int64 { return max(int64(t.Sub(c.epoch)), 1) }

func (c *pageCache) page(k int) []byte {
	off := k * PageSize
	return c.mem[off : off+PageSize : off+PageSize]
}

// fresh reports whether an entry last observed at seen may still be trusted
// by an observation made no later than now.
func fresh(seen, now int64) bool { return seen > 0 && now-seen < int64(cacheTrust) }

// get copies bytes [off, off+len(dst)) of the page cached for (g, w) into
// dst, if there is one and it is fresh. w was loaded by the caller no later
// than now and no earlier than loaded, which counts as an observation of w.
func (c *pageCache) get(g GFN, w Word, off int, dst []byte, loaded time.Time) bool {
	now := c.now()
	c.touch(now)
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.index[g]
	if !ok {
		return false
	}
	e := &c.ents[k]
	seen := e.seen.Load()
	if e.word != w || !fresh(seen, now) {
		return false
	}
	copy(dst, c.page(int(k))[off:])
	e.ref.Store(true)
	if at := c.at(loaded); at > seen {
		e.seen.CompareAndSwap(seen, at)
	}
	return true
}

// keepHeld keeps kind held for the frames first+k whose page the cache
// holds fresh under words[k], noting its entry in slots[k], and sets the
// others marked held to miss.
func (c *pageCache) keepHeld(first GFN, words []Word, kinds []uint8, slots []int32, held, miss uint8) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, w := range words {
		if kinds[k] != held {
			continue
		}
		if e, ok := c.index[first+GFN(k)]; !ok || c.ents[e].word != w || !fresh(c.ents[e].seen.Load(), now) {
			kinds[k] = miss
		} else {
			slots[k] = e
		}
	}
}

// lendRun shows the pages cached for frames first, first+1, ... under
// words to fn in place, in order, under one hold of the read lock, so no
// put can reuse a page meanwhile. slots are the entries keepHeld found for
// them; an entry still holds frame first+i under words[i] if its frame and
// word say so (one entry per frame: a put for a cached frame reuses its
// entry), so no index lookup is made again. Frames whose pages lie one
// after another in cache memory (as a scan's fills put them) are shown
// together: fn gets frames i to i+n-1 in pages, n pages long. It stops at
// the first frame the cache holds no fresh page for (next is its index, or
// len(words) when all were shown) or when fn says stop (more false). The
// words were loaded no earlier than loaded, which counts as an observation
// of each.
func (c *pageCache) lendRun(first GFN, words []Word, slots []int32, loaded time.Time, fn func(i, n int, pages []byte) bool) (next int, more bool) {
	now := c.now()
	c.touch(now)
	at := c.at(loaded)
	c.mu.RLock()
	defer c.mu.RUnlock()
	runFrom, runSlot, runLen := 0, int32(0), 0
	flush := func() bool {
		if runLen == 0 {
			return true
		}
		off := int(runSlot) * PageSize
		ok := fn(runFrom, runLen, c.mem[off:off+runLen*PageSize:off+runLen*PageSize])
		runLen = 0
		return ok
	}
	for i, w := range words {
		k := slots[i]
		if k < 0 || int(k) >= len(c.ents) {
			return i, flush()
		}
		e := &c.ents[k]
		seen := e.seen.Load()
		if e.gfn != first+GFN(i) || e.word != w || !fresh(seen, now) {
			return i, flush()
		}
		e.ref.Store(true)
		if at > seen {
			e.seen.CompareAndSwap(seen, at)
		}
		if runLen > 0 && k == runSlot+int32(runLen) {
			runLen++
			continue
		}
		if !flush() {
			return i, false
		}
		runFrom, runSlot, runLen = i, k, 1
	}
	return len(words), flush()
}

// put caches page as the content of g under w, verified by an observation
// of w no earlier than at. The read protocol itself rests on no wrap within
// one read, so the page belongs to the incarnation of w seen at the recheck.
func (c *pageCache) put(g GFN, w Word, page []byte, at time.Time) {
	if c.closed.Load() {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(g, w, page, c.at(at), now)
}

// putLocked is put with c.mu held; seen and now are cache times.
func (c *pageCache) putLocked(g GFN, w Word, page []byte, seen, now int64) {
	if !fresh(seen, now) || c.closed.Load() {
		return // verified too long ago to start a chain of observations
	}
	k, ok := c.index[g]
	if !ok {
		v := c.victim()
		if v < 0 {
			return // no memory ready yet: this page goes uncached
		}
		k = int32(v)
		c.index[g] = k
	}
	e := &c.ents[k]
	e.gfn, e.word = g, w
	e.seen.Store(seen)
	e.ref.Store(false) // second chance is earned by a hit
	copy(c.page(int(k)), page)
}

// victim returns a free entry, or evicts one: CLOCK over the entries, where
// dead and aged-out entries go first and a referenced one gets a second
// chance. While the cache is below capacity it returns -1 if no faulted-in
// memory is left, and has more made ready meanwhile.
func (c *pageCache) victim() int {
	if len(c.ents) < c.capacity {
		if int64(len(c.ents)) >= c.ready.Load() {
			c.prefault(len(c.ents) + cacheGrowPages)
			return -1
		}
		if len(c.ents) == cap(c.ents) {
			grown := make([]cacheEnt, len(c.ents), min(c.capacity, max(2*cap(c.ents), cacheGrowPages)))
			for i := range c.ents {
				grown[i].gfn, grown[i].word = c.ents[i].gfn, c.ents[i].word
				grown[i].seen.Store(c.ents[i].seen.Load())
				grown[i].ref.Store(c.ents[i].ref.Load())
			}
			c.ents = grown
		}
		c.ents = c.ents[:len(c.ents)+1]
		return len(c.ents) - 1
	}
	now := c.now()
	for {
		k := c.hand
		c.hand = (c.hand + 1) % len(c.ents)
		e := &c.ents[k]
		if fresh(e.seen.Load(), now) && e.ref.Swap(false) {
			continue
		}
		delete(c.index, e.gfn)
		c.evictions.Add(1)
		return k
	}
}

// prefault faults in cache memory for the first pages pages (bounded by
// the capacity) in huge-page steps, publishing each step as it is ready:
// filling the cache then costs one copy per page. The first step is made
// at once, so a cache is never empty-handed; the rest on its own goroutine.
// Nothing happens while an earlier prefault runs.
func (c *pageCache) prefault(pages int) {
	want := min(pages, c.capacity) * PageSize
	if want <= int(c.ready.Load())*PageSize || c.closed.Load() || !c.faulting.CompareAndSwap(false, true) {
		return
	}
	if c.ready.Load() == 0 {
		c.populateStep()
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		defer c.faulting.Store(false)
		for int(c.ready.Load())*PageSize < want && !c.closed.Load() {
			c.populateStep()
		}
	}()
}

// populateStep faults in the huge page after the ready ones. Only the
// prefault that holds faulting calls it: populate writes the pages.
func (c *pageCache) populateStep() {
	off := int(c.ready.Load()) * PageSize
	end := min((off/hugemem.Size+1)*hugemem.Size, len(c.mem))
	hugemem.Populate(c.mem[off:end])
	c.ready.Store(int64(end / PageSize))
}

// touch notes a use and starts the sweeper if it is not running.
func (c *pageCache) touch(now int64) {
	c.lastUse.Store(now)
	if !c.sweeping.Load() && !c.closed.Load() && c.sweeping.CompareAndSwap(false, true) {
		c.done.Add(1)
		go c.sweep()
	}
}

// sweep observes the word of every entry each cacheSweep while the cache is
// in use, keeping unchanged entries fresh and killing changed ones.
func (c *pageCache) sweep() {
	defer c.done.Done()
	t := time.NewTicker(cacheSweep)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.sweeping.Store(false)
			return
		case <-t.C:
		}
		if c.now()-c.lastUse.Load() > int64(cacheIdle) {
			c.sweeping.Store(false)
			// A use that saw the flag still set before we cleared it has
			// not started a sweeper: look again.
			if c.now()-c.lastUse.Load() > int64(cacheIdle) || !c.sweeping.CompareAndSwap(false, true) {
				return
			}
		}
		c.sweepOnce()
	}
}

// sweepOnce checks the entries in chunks, each bracketed by two clock
// readings: an unchanged word is recorded as observed at the earlier one,
// and counts only if the entry was fresh at the later one.
func (c *pageCache) sweepOnce() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var same [128]bool
	for base := 0; base < len(c.ents); base += len(same) {
		ents := c.ents[base:min(base+len(same), len(c.ents))]
		low := c.now()
		for i := range ents {
			same[i] = c.locs.Load(ents[i].gfn) == ents[i].word
		}
		high := c.now()
		for i := range ents {
			e := &ents[i]
			seen := e.seen.Load()
			switch {
			case !same[i] || !fresh(seen, high):
				e.seen.Store(0)
			case seen < low:
				e.seen.CompareAndSwap(seen, low)
			}
		}
	}
}

// close stops the sweeper and the prefault and releases the memory; a get
// or put racing with it sees an empty cache.
func (c *pageCache) close() {
	if c.closed.Swap(true) {
		return
	}
	// A put that saw the cache open may start a prefault: let it finish
	// before waiting for the goroutines.
	c.mu.Lock()
	close(c.stop)
	c.mu.Unlock()
	c.done.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index, c.ents = map[GFN]int32{}, nil
	c.release()
}

// len is the number of cached pages (for tests).
func (c *pageCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.index)
}
