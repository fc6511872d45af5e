package vmsock

import (
	"context"
	"os"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Backend is what the socket serves: one VM's runtime.
type Backend interface {
	// Info describes the VM; it is asked again for every get-info request.
	Info() VMInfo
	// RAMFile returns a new read-only descriptor of the guest RAM memfd;
	// the server sends it and closes its copy.
	RAMFile() (*os.File, error)
	// LocationMapFile returns a new read-only descriptor of the location map.
	LocationMapFile() (*os.File, error)
	// MakeResident pages the GFNs in and returns one result per GFN, nil
	// for done. It must return when ctx ends.
	MakeResident(ctx context.Context, gfns []fabric.GFN) []error
}

// Runtime is what a split-memory runtime offers the socket by itself.
type Runtime interface {
	RAMFile() (*os.File, error)
	LocationMapFile() (*os.File, error)
	MakeResident(ctx context.Context, gfns []fabric.GFN) []error
}

// RuntimeBackend serves a runtime together with what only its owner knows
// about the VM (registers, sub-host credentials).
type RuntimeBackend struct {
	Runtime
	VM VMInfo
}

// Info is the VM's description.
func (b RuntimeBackend) Info() VMInfo { return b.VM }

// CounterSource is a Backend that hands out the runtime's counters
// (get-stats, version 2). A backend without it answers get-stats with an
// error naming that.
type CounterSource interface {
	Counters() map[string]uint64
}

// Counters are the runtime's counters, when the runtime keeps them.
func (b RuntimeBackend) Counters() map[string]uint64 {
	if cs, ok := b.Runtime.(CounterSource); ok {
		return cs.Counters()
	}
	return nil
}
