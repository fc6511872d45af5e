package kvmhost

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// Config describes the VM a Runtime splits.
type Config struct {
	// Memory is the source image: the content of every backed range.
	Memory physmem.Reader
	// Layout is the backed guest-physical ranges, page aligned, sorted,
	// non-overlapping; holes are left out.
	Layout []fabric.PhysRange
	// Subhosts are the sub-host regions, dialed by the caller; the index is
	// the sub-host id in location words. Each needs at least
	// SlotsNeeded(Layout, len(Subhosts)) slots.
	Subhosts []fabric.Transport
	// ResidentPct is the share of backed pages kept resident, 1..100.
	ResidentPct int
	// Workload configures the synthetic vCPUs started by Start.
	Workload WorkloadConfig
	// Log receives the runtime's events (quiet when zero).
	Log zerolog.Logger
}

// WorkloadConfig configures the synthetic vCPU threads.
type WorkloadConfig struct {
	// Threads is the number of vCPU threads (0: no workload).
	Threads int
	// HotSetPages is the size of the hot set each access picks from with
	// probability HotFraction (0: every backed page is equally hot).
	HotSetPages int
	// HotFraction is the share of accesses that go to the hot set (default 0.9).
	HotFraction float64
	// WriteRatio is the share of accesses that write, 0..1.
	WriteRatio float64
	// WritableGFNs are the only frames the workload writes (the guest
	// kernel's free pages); it reads any backed frame.
	WritableGFNs []fabric.GFN
	// Rate is the accesses per second per thread (0: as fast as it can).
	Rate float64
	// Seed makes the access pattern reproducible.
	Seed uint64
}

// Stats are the runtime's counters.
type Stats struct {
	Faults           uint64 // missing-page faults handled
	WPFaults         uint64 // write-protect faults seen (held while a page was evicted)
	PageIns          uint64 // pages brought in from sub-hosts
	PageOuts         uint64 // pages written out to sub-hosts
	ExchangeRequests uint64 // MakeResident calls
	ExchangedPages   uint64 // pages MakeResident paged in
	ZeroFills        uint64 // faults on frames that were never written, filled with zeros
	ResidentPages    uint64 // backed pages resident now
	ResidentLimit    uint64 // the most pages kept resident: ResidentPct of the pages with content at load
	BackedPages      uint64 // pages the layout backs
	EmptyPages       uint64 // pages of zeros in the image, held nowhere until written
	RemotePages      uint64 // pages held by sub-hosts now
	WorkloadReads    uint64 // pages the workload read
	WorkloadWrites   uint64 // pages the workload stamped
	PageInErrors     uint64 // page-ins that failed (retried for faults)
	PageOutErrors    uint64 // page-outs that failed (page kept resident)
}

// Errors of the runtime.
var (
	// ErrConfig reports an unusable Config.
	ErrConfig = errors.New("invalid runtime config")
	// ErrNoSlots reports that no sub-host has a free slot left.
	ErrNoSlots = errors.New("no free sub-host slot")
	// ErrNotBacked reports a GFN outside the layout.
	ErrNotBacked = errors.New("gfn not backed by the layout")
	// ErrClosed reports use of a closed Runtime.
	ErrClosed = errors.New("runtime closed")
)

// evictBatchMax bounds the pages one eviction round writes out: enough for
// large WriteSlots batches, few enough to keep fault latency low.
const evictBatchMax = 256

// moveTimeout bounds the transfers of one page-out round, and of the
// page-ins of one batch of faults.
const moveTimeout = 30 * time.Second

// faultRetry is how long a fault whose page-in failed waits before the
// faulting thread is woken to fault (and try) again.
const faultRetry = 50 * time.Millisecond

// SlotsNeeded is the region size, in slots, the caller must ask each of
// subhosts sub-hosts for (tcpfallback Options.Slots) to split layout: enough
// that the sub-hosts together could hold every backed page, whatever the
// resident share, plus room for a batch in flight.
func SlotsNeeded(layout []fabric.PhysRange, subhosts int) uint64 {
	if subhosts <= 0 {
		return 0
	}
	n := backedPages(layout)
	return (n+uint64(subhosts)-1)/uint64(subhosts) + evictBatchMax
}

func backedPages(layout []fabric.PhysRange) uint64 {
	var n uint64
	for _, r := range layout {
		n += r.Pages()
	}
	return n
}

// check validates the config and returns the number of GFNs the map covers.
func (c *Config) check() (uint64, error) {
	if c.Memory == nil {
		return 0, fmt.Errorf("no source memory: %w", ErrConfig)
	}
	if len(c.Layout) == 0 {
		return 0, fmt.Errorf("empty layout: %w", ErrConfig)
	}
	var prev uint64
	for i, r := range c.Layout {
		if r.Start%fabric.PageSize != 0 || r.End%fabric.PageSize != 0 || r.End <= r.Start {
			return 0, fmt.Errorf("layout range %d [%#x,%#x) not page aligned or empty: %w", i, r.Start, r.End, ErrConfig)
		}
		if r.Start < prev {
			return 0, fmt.Errorf("layout range %d [%#x,%#x) overlaps or is out of order: %w", i, r.Start, r.End, ErrConfig)
		}
		prev = r.End
	}
	if c.ResidentPct < 1 || c.ResidentPct > 100 {
		return 0, fmt.Errorf("resident share %d%% not in 1..100: %w", c.ResidentPct, ErrConfig)
	}
	if c.ResidentPct < 100 && len(c.Subhosts) == 0 {
		return 0, fmt.Errorf("resident share %d%% needs at least one sub-host: %w", c.ResidentPct, ErrConfig)
	}
	if len(c.Subhosts) > fabric.MaxSubHost+1 {
		return 0, fmt.Errorf("%d sub-hosts, at most %d: %w", len(c.Subhosts), fabric.MaxSubHost+1, ErrConfig)
	}
	var slots uint64
	for i, t := range c.Subhosts {
		if t == nil {
			return 0, fmt.Errorf("sub-host %d is nil: %w", i, ErrConfig)
		}
		slots += t.Slots()
	}
	backed := backedPages(c.Layout)
	limit := residentLimit(backed, c.ResidentPct)
	if c.ResidentPct < 100 && slots < backed-limit {
		return 0, fmt.Errorf("sub-hosts hold %d slots, %d pages must go out (ask each for SlotsNeeded = %d): %w",
			slots, backed-limit, SlotsNeeded(c.Layout, len(c.Subhosts)), ErrConfig)
	}
	w := c.Workload
	if w.Threads < 0 || w.WriteRatio < 0 || w.WriteRatio > 1 || w.HotFraction < 0 || w.HotFraction > 1 || w.Rate < 0 || w.HotSetPages < 0 {
		return 0, fmt.Errorf("workload %+v out of range: %w", w, ErrConfig)
	}
	return prev >> fabric.PageShift, nil
}

func residentLimit(backed uint64, pct int) uint64 {
	return max(1, backed*uint64(pct)/100)
}
