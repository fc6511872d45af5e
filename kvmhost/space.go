package kvmhost

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// SpaceConfig describes a guest whose RAM a VMM maps in its own address
// space (QEMU on a memory-backend-memfd): the runtime serves the faults of
// that mapping through a userfaultfd the VMM made and handed over.
type SpaceConfig struct {
	// RAM is the guest RAM memfd, offset == guest-physical address. The
	// Runtime owns it from New on.
	RAM *os.File
	// UFFD is the userfaultfd registered (missing + write-protect, API done
	// with missing-shmem and write-protect-shmem) on the VMM's mapping of
	// RAM from offset 0. The Runtime owns it.
	UFFD *os.File
	// Base and Length are that mapping in the VMM's address space.
	Base, Length uint64
	// Subhosts are the sub-host regions (see Config.Subhosts); each needs
	// SlotsNeeded of the layout [0, Length).
	Subhosts []fabric.Transport
	// ResidentPct is the share of the pages the guest has touched so far
	// that stays resident, 1..100: a guest starts with no page written
	// (every frame is a local hole that reads as zeros and costs nothing),
	// so the limit follows what it has touched.
	ResidentPct int
	// MinResident is the floor of the resident limit in pages (0: 256).
	MinResident uint64
	// Log receives the runtime's events.
	Log zerolog.Logger
}

// defaultMinResident is the resident floor of a VMM guest: room for the
// firmware and the first steps of a boot before any eviction.
const defaultMinResident = 256

// limitGrowth makes the resident limit a share of the pages touched.
type limitGrowth struct {
	pct   uint64 // 0: the limit is fixed
	floor uint64
	count uint64 // frames given content since start
}

func (c *SpaceConfig) check() error {
	switch {
	case c.RAM == nil || c.UFFD == nil:
		return fmt.Errorf("vmm guest ram: memfd and userfaultfd needed: %w", ErrConfig)
	case c.Length == 0 || c.Length%fabric.PageSize != 0 || c.Base%fabric.PageSize != 0:
		return fmt.Errorf("vmm guest ram mapping %#x+%#x empty or not page aligned: %w", c.Base, c.Length, ErrConfig)
	case c.ResidentPct < 1 || c.ResidentPct > 100:
		return fmt.Errorf("resident share %d%% not in 1..100: %w", c.ResidentPct, ErrConfig)
	case c.ResidentPct < 100 && len(c.Subhosts) == 0:
		return fmt.Errorf("resident share %d%% needs at least one sub-host: %w", c.ResidentPct, ErrConfig)
	case len(c.Subhosts) > fabric.MaxSubHost+1:
		return fmt.Errorf("%d sub-hosts, at most %d: %w", len(c.Subhosts), fabric.MaxSubHost+1, ErrConfig)
	}
	need := SlotsNeeded(c.Layout(), len(c.Subhosts))
	for i, t := range c.Subhosts {
		if t == nil {
			return fmt.Errorf("sub-host %d is nil: %w", i, ErrConfig)
		}
		if t.Slots() < need {
			return fmt.Errorf("sub-host %d has %d slots, needs %d: %w", i, t.Slots(), need, ErrConfig)
		}
	}
	return nil
}

// Layout is the guest-physical range the VMM's mapping covers.
func (c *SpaceConfig) Layout() []fabric.PhysRange {
	return []fabric.PhysRange{{Start: 0, End: c.Length}}
}
