//go:build linux

package kvmhost

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
)

// NewForSpace makes the runtime of a guest whose RAM a VMM maps: the same
// pager, fault handler and location map as for an image, with the fault
// source being the VMM's address space (its userfaultfd and the base of its
// mapping) instead of the runtime's own mapping. Every frame starts as a
// local hole (never written); the first fault on it installs a zero page
// and makes it resident. The runtime never maps the RAM itself: it reads
// only pages it knows are resident, by pread (a read of a hole through a
// mapping would allocate a page behind the userfaultfd's back).
func NewForSpace(cfg SpaceConfig) (*Runtime, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	// The FD owns a plain descriptor; the os.File would close its own
	// when collected.
	fd, err := unix.FcntlInt(cfg.UFFD.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vmm guest ram: duplicate userfaultfd: %w", err)
	}
	uf, err := uffd.Adopt(fd, uffd.FeatureMissingShmem|uffd.FeatureWPShmem)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vmm guest ram: %w", err)
	}
	gfns := cfg.Length >> fabric.PageShift
	r := &Runtime{
		log:      cfg.Log,
		layout:   cfg.Layout(),
		subs:     cfg.Subhosts,
		flags:    make([]uint8, gfns),
		accessed: make([]uint32, gfns),
		stop:     make(chan struct{}),
		stopFd:   -1,
		ram:      cfg.RAM,
		uf:       uf,
		base:     uintptr(cfg.Base),
		size:     uintptr(cfg.Length),
	}
	floor := cfg.MinResident
	if floor == 0 {
		floor = defaultMinResident
	}
	r.grow = limitGrowth{pct: uint64(cfg.ResidentPct), floor: floor}
	if cfg.ResidentPct == 100 {
		r.grow.pct = 0 // nothing ever goes out
		floor = gfns
	}
	r.limit = floor
	r.c.limit.Store(r.limit)
	for _, t := range cfg.Subhosts {
		r.slots = append(r.slots, newSlotAlloc(t.Slots()))
	}
	r.backed = make([]fabric.GFN, gfns)
	for g := range r.backed {
		r.backed[g] = fabric.GFN(g)
		r.flags[g] = flagBacked
	}
	if r.locs, err = fabric.CreateLocationMap(gfns); err != nil {
		uf.Close() // the caller's descriptors stay the caller's on error
		return nil, err
	}
	cfg.UFFD.Close() // adopted as uf
	r.log.Info().Uint64("pages", gfns).Int("subhosts", len(r.subs)).Int("resident_pct", cfg.ResidentPct).
		Msg("vmm guest ram taken over")
	return r, nil
}

// touched raises the resident limit of a VMM guest as it gives n more
// frames content (its first touches). r.mu is held.
func (g *limitGrowth) touched(r *Runtime, n uint64) {
	if g.pct == 0 || n == 0 {
		return
	}
	g.count += n
	r.limit = max(g.floor, g.count*g.pct/100)
	r.c.limit.Store(r.limit)
}
