//go:build !linux

package kvmhost

import (
	"context"
	"fmt"
	"os"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
)

// Runtime is the split-memory runtime; it needs Linux (memfd, userfaultfd).
type Runtime struct{}

func errOS() error { return fmt.Errorf("split-memory runtime: %w", uffd.ErrUnsupported) }

// New fails: the runtime needs Linux.
func New(ctx context.Context, cfg Config) (*Runtime, error) { return nil, errOS() }

// Start fails: the runtime needs Linux.
func (r *Runtime) Start(ctx context.Context) error { return errOS() }

// MakeResident fails for every GFN: the runtime needs Linux.
func (r *Runtime) MakeResident(ctx context.Context, gfns []fabric.GFN) []error {
	errs := make([]error, len(gfns))
	for i := range errs {
		errs[i] = errOS()
	}
	return errs
}

// RAMFile fails: the runtime needs Linux.
func (r *Runtime) RAMFile() (*os.File, error) { return nil, errOS() }

// LocationMapFile fails: the runtime needs Linux.
func (r *Runtime) LocationMapFile() (*os.File, error) { return nil, errOS() }

// Locations is nil: the runtime needs Linux.
func (r *Runtime) Locations() fabric.Locations { return nil }

// Layout is empty: the runtime needs Linux.
func (r *Runtime) Layout() []fabric.PhysRange { return nil }

// Subhosts is empty: the runtime needs Linux.
func (r *Runtime) Subhosts() []fabric.Transport { return nil }

// Stats is zero: the runtime needs Linux.
func (r *Runtime) Stats() Stats { return Stats{} }

// Close does nothing.
func (r *Runtime) Close() error { return nil }

// NewForSpace fails: the runtime needs Linux.
func NewForSpace(cfg SpaceConfig) (*Runtime, error) { return nil, errOS() }
