package fabric

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// Sentinel errors of Memory.
var (
	// ErrBadLayout reports a guest-physical layout that is empty, unaligned
	// or larger than the RAM file or the location map.
	ErrBadLayout = errors.New("invalid guest-physical layout")
	// ErrNoSubhost reports a location naming a sub-host Memory has no
	// transport for.
	ErrNoSubhost = errors.New("no transport for sub-host")
)

// preadOnly makes openLocalView refuse the view, so that tests exercise
// the fallback on a machine where the view works.
var preadOnly bool

// DefaultReadTimeout bounds one ReadPhys call's remote work (transport
// batches and exchange requests) when MemoryConfig.Timeout is zero.
const DefaultReadTimeout = 5 * time.Second

// Exchanger makes guest frames resident in the VM (self paging): the
// runtime pages them in, evicting victims as it must. The result has one
// entry per GFN, nil for a frame that is now resident (it may move again).
type Exchanger interface {
	MakeResident(ctx context.Context, gfns []GFN) []error
}

// ExchangeAuditor is an Exchanger that hears how its answers held up.
// Memory never trusts an answer: after each exchange it re-loads the
// location word of every frame answered done, and tells the exchanger how
// many (done) it checked and how many of those had not moved at all
// (unmoved: still remote under the very word read before the request, so
// nothing paged them in). Those are read by proxy paging instead.
type ExchangeAuditor interface {
	Exchanger
	Audit(done, unmoved int)
}

// MemoryConfig is what Memory reads a split-memory VM through.
type MemoryConfig struct {
	// RAM is the guest RAM memfd, ideally opened O_RDONLY (file offset ==
	// guest-physical address). The caller keeps it open until Close.
	RAM *os.File
	// Locations is the VM's location map (one word per GFN).
	Locations Locations
	// Layout is the backed guest-physical ranges; everything else is
	// out of range.
	Layout []PhysRange
	// Subhosts maps the sub-host id of location words to its transport.
	Subhosts map[uint8]Transport
	// Method is how remote pages are read.
	Method Method
	// Exchanger serves MethodSelf; required for it.
	Exchanger Exchanger
	// CacheBytes bounds MethodAdaptive's page cache (DefaultCacheBytes if 0).
	CacheBytes int64
	// Timeout bounds the remote work of one ReadPhys (DefaultReadTimeout if 0).
	Timeout time.Duration
}

// MemoryStats are Memory's counters since NewMemory. Counts are of page
// reads (one guest page read once for one ReadPhys), so a page that two
// ranges of a batch share counts twice unless fetched once.
type MemoryStats struct {
	LocalPages         uint64 // page reads served from guest RAM on this host
	RemotePagesFetched uint64 // pages transferred from sub-hosts
	PagesExchanged     uint64 // frames the Exchanger made resident for us
	ExchangeFallbacks  uint64 // frames the Exchanger failed, read by proxy instead
	ExchangeUnverified uint64 // frames answered done that had not moved, read by proxy instead
	CacheHits          uint64 // remote page reads served by the adaptive cache
	CacheMisses        uint64 // remote page reads the adaptive cache could not serve
	CacheEvictions     uint64 // cache entries dropped for space or staleness
	Retries            uint64 // page re-reads because the location changed meanwhile
	LocalFaults        uint64 // faults recovered in the local view (holes)
	FailedPages        uint64 // page reads that ended in an error
}

type memoryCounters struct {
	local, fetched, exchanged, fallbacks     atomic.Uint64
	unverified                               atomic.Uint64
	hits, misses, evictions, retries, faults atomic.Uint64
	failed                                   atomic.Uint64
}

// Memory reads the guest-physical memory of a split-memory VM as if it were
// not split: it implements physmem.Reader over the VM's RAM memfd (local
// pages), its location map, and the sub-hosts' transports (remote pages).
// Every page read follows the location-word protocol. Safe for concurrent use.
type Memory struct {
	cfg     MemoryConfig
	layout  []PhysRange
	size    uint64
	timeout time.Duration
	local   *localView
	cache   *pageCache
	content contentSnapshot // NextData's view of which frames were never written
	stats   memoryCounters
	batches sync.Pool
	// lendSpare keeps LendPhys's round buffers (outside the Go heap, in
	// huge pages where the system has them) between calls
	lendSpare hugemem.Spare
	// lendScratch keeps the rounds' scratch (words, kinds, the buffer for
	// pages shown again) between LendPhys calls: a search that lends a
	// megabyte at a time would make them anew each time
	lendScratch sync.Pool // *lendRound

	closeOnce sync.Once
	closeErr  error
}

var _ physmem.Reader = (*Memory)(nil)

// NewMemory opens the local view of cfg.RAM and prepares the chosen method.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	layout, err := normalizeLayout(cfg.Layout)
	if err != nil {
		return nil, fmt.Errorf("fabric memory: %w", err)
	}
	size := layout[len(layout)-1].End
	switch {
	case cfg.RAM == nil:
		return nil, fmt.Errorf("fabric memory: no ram file: %w", ErrBadLayout)
	case cfg.Locations == nil:
		return nil, fmt.Errorf("fabric memory: no location map: %w", ErrBadLayout)
	case uint64(GFNOf(size-1)) >= cfg.Locations.Len():
		return nil, fmt.Errorf("fabric memory: layout ends at %#x beyond the location map of %d gfns: %w",
			size, cfg.Locations.Len(), ErrBadLayout)
	}
	if _, err := cfg.Method.check(); err != nil {
		return nil, fmt.Errorf("fabric memory: %w", err)
	}
	if cfg.Method == MethodSelf && cfg.Exchanger == nil {
		return nil, fmt.Errorf("fabric memory: method self needs an exchanger: %w", ErrBadMethod)
	}
	m := &Memory{cfg: cfg, layout: layout, size: size, timeout: cfg.Timeout, lendSpare: hugemem.Spare{Max: lendDepth}}
	if m.timeout <= 0 {
		m.timeout = DefaultReadTimeout
	}
	if m.local, err = openLocalView(cfg.RAM, size); err != nil {
		return nil, fmt.Errorf("fabric memory: %w", err)
	}
	if cfg.Method == MethodAdaptive {
		cb := cfg.CacheBytes
		if cb <= 0 {
			cb = DefaultCacheBytes
		}
		if m.cache, err = newPageCache(cb, cfg.Locations, &m.stats.evictions); err != nil {
			m.local.close()
			return nil, fmt.Errorf("fabric memory: %w", err)
		}
		// Pages keep moving while the VM runs: room for a quarter more.
		m.cache.prefault(int(m.remotePages() * 5 / 4))
	}
	// A scan's rounds write their buffers whole; on a host that backs
	// memory lazily, faulting them in costs more than the first rounds'
	// fetches (1.7 ms a MiB here). It is done now, beside what the reader
	// does first (binding the kernel).
	m.lendSpare.Prefill(m.lendSpare.Max, lendCopyPages*PageSize)
	return m, nil
}

// Size is one past the highest backed guest-physical address.
func (m *Memory) Size() uint64 { return m.size }

// Layout is the backed guest-physical ranges, sorted and merged.
func (m *Memory) Layout() []PhysRange { return append([]PhysRange(nil), m.layout...) }

// Method is the configured method.
func (m *Memory) Method() Method { return m.cfg.Method }

// LocalMode says how local pages are read: "sigbus-view" (the read-only
// mapping with its own userfaultfd) or "pread: <why the view failed>".
func (m *Memory) LocalMode() string { return m.local.mode() }

// Stats returns a snapshot of the counters.
func (m *Memory) Stats() MemoryStats {
	s := &m.stats
	return MemoryStats{
		LocalPages: s.local.Load(), RemotePagesFetched: s.fetched.Load(),
		PagesExchanged: s.exchanged.Load(), ExchangeFallbacks: s.fallbacks.Load(), ExchangeUnverified: s.unverified.Load(),
		CacheHits: s.hits.Load(), CacheMisses: s.misses.Load(), CacheEvictions: s.evictions.Load(),
		Retries: s.retries.Load(), LocalFaults: s.faults.Load(), FailedPages: s.failed.Load(),
	}
}

// remotePages counts the frames of the layout that are remote now: what
// a scan would fetch, and so the cache memory worth having ready.
func (m *Memory) remotePages() uint64 {
	var n uint64
	for _, r := range m.layout {
		for g := GFNOf(r.Start); g < GFNOf(r.End+PageSize-1); g++ {
			if m.cfg.Locations.Load(g).State() == StateRemote {
				n++
			}
		}
	}
	return n
}

// Close releases the local view and the cache. It closes neither the RAM
// file, the location map nor the transports: they are the caller's.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		if m.cache != nil {
			m.cache.close()
		}
		m.lendSpare.Close()
		m.closeErr = m.local.close()
	})
	return m.closeErr
}

// remoteContext is the deadline of one ReadPhys call's remote work.
func (m *Memory) remoteContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.timeout)
}
