package control

import (
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric/store"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// StoreBackend serves the regions of a fabric/store.Store.
func StoreBackend(s *store.Store) Backend { return storeBackend{s} }

type storeBackend struct{ s *store.Store }

func (b storeBackend) Region(vm string, slots uint64) (Region, error) {
	r, err := b.s.Region(vm, slots)
	if err != nil {
		return nil, storeErr(err)
	}
	return storeRegion{r}, nil
}

func (b storeBackend) Lookup(vm string) (Region, error) {
	r, err := b.s.Lookup(vm)
	if err != nil {
		return nil, storeErr(err)
	}
	return storeRegion{r}, nil
}

// storeErr gives store errors the control sentinel that carries them on the wire.
func storeErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNoRegion):
		return fmt.Errorf("%w: %w", wire.ErrNoRegion, err)
	case errors.Is(err, store.ErrSizeMismatch), errors.Is(err, store.ErrBadSize),
		errors.Is(err, store.ErrBadVMID), errors.Is(err, store.ErrCorrupt):
		return fmt.Errorf("%w: %w", wire.ErrRegion, err)
	}
	return err
}

// storeRegion is a store.Region seen as a control Region.
type storeRegion struct{ *store.Region }

// Stats reports the region's size and disk use.
func (r storeRegion) Stats() Stats {
	s := r.Region.Stats()
	return Stats{VM: s.VM, Slots: s.Slots, ResidentBytes: s.ResidentBytes}
}
