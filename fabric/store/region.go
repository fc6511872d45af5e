package store

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Region is one VM's slots, mapped MAP_SHARED from its backing file.
type Region struct {
	vm    string
	slots uint64

	// mu serialises Free, Sync, Stats and close; Slot and Bytes only check
	// closed, to stay cheap on the serving path.
	mu     sync.Mutex
	closed atomic.Bool
	file   *os.File
	mem    []byte
}

// RegionStats describes a region's size and real disk use.
type RegionStats struct {
	VM            string
	Slots         uint64
	ResidentBytes uint64 // bytes allocated on disk; freed and never-written slots use none
}

// VM is the id of the VM the region belongs to.
func (r *Region) VM() string { return r.vm }

// Slots is the number of 4 KiB slots.
func (r *Region) Slots() uint64 { return r.slots }

// Slot returns the PageSize bytes of slot i, aliasing the mapping: writes to
// it are writes to the store.
func (r *Region) Slot(i uint64) ([]byte, error) {
	if r.closed.Load() {
		return nil, fmt.Errorf("slot %d of %s: %w", i, r.vm, fabric.ErrClosed)
	}
	if i >= r.slots {
		return nil, fmt.Errorf("slot %d of %s (%d slots): %w", i, r.vm, r.slots, fabric.ErrSlotRange)
	}
	off := i * fabric.PageSize
	return r.mem[off : off+fabric.PageSize : off+fabric.PageSize], nil
}

// StoreSlots writes pages (a whole number of PageSize pages) into the slots
// from first on through the file (pwrite), not the mapping: the kernel copies
// each page into the page cache whole, so a process killed mid-write leaves
// every slot with its old page or its new one, never a mix. The mapping sees
// the new pages at once (same page cache).
func (r *Region) StoreSlots(first uint64, pages []byte) error {
	if r.closed.Load() {
		return fmt.Errorf("store slots of %s: %w", r.vm, fabric.ErrClosed)
	}
	n := uint64(len(pages)) / fabric.PageSize
	if uint64(len(pages))%fabric.PageSize != 0 || n == 0 {
		return fmt.Errorf("store slots of %s: %d bytes is not whole pages: %w", r.vm, len(pages), fabric.ErrBufferSize)
	}
	if first >= r.slots || n > r.slots-first {
		return fmt.Errorf("store slots %d..%d of %s (%d slots): %w", first, first+n-1, r.vm, r.slots, fabric.ErrSlotRange)
	}
	prepareWrite(r.mem, int(first*fabric.PageSize), len(pages))
	if _, err := r.file.WriteAt(pages, int64(first*fabric.PageSize)); err != nil {
		return fmt.Errorf("store slots %d..%d of %s: %w", first, first+n-1, r.vm, err)
	}
	return nil
}

// Bytes returns the whole page-aligned mapping (nil once closed), for RDMA
// memory registration and for vectored I/O straight from the region.
func (r *Region) Bytes() []byte {
	if r.closed.Load() {
		return nil
	}
	return r.mem
}

// Free releases the given slots: they read as zeros and use no disk. Every
// slot is checked before any is freed, so a bad list frees nothing.
func (r *Region) Free(slots ...uint64) error {
	for _, s := range slots {
		if s >= r.slots {
			return fmt.Errorf("free slot %d of %s (%d slots): %w", s, r.vm, r.slots, fabric.ErrSlotRange)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return fmt.Errorf("free slots of %s: %w", r.vm, fabric.ErrClosed)
	}
	// Punch contiguous runs in one call each: page-out frees in runs.
	sorted := slices.Clone(slots)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[j-1]+1 {
			j++
		}
		off := int64(sorted[i]) * fabric.PageSize
		n := int64(j-i) * fabric.PageSize
		if err := punchHole(r.file, off, n); err != nil {
			return fmt.Errorf("free slots %d..%d of %s: %w", sorted[i], sorted[j-1], r.vm, err)
		}
		i = j
	}
	return nil
}

// Sync flushes the mapping to disk (msync), so the region survives power
// loss; process death alone loses nothing even without it.
func (r *Region) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return fmt.Errorf("sync %s: %w", r.vm, fabric.ErrClosed)
	}
	if err := syncMapping(r.mem); err != nil {
		return fmt.Errorf("sync %s: %w", r.vm, err)
	}
	return nil
}

// Stats reports the region's size and disk use. ResidentBytes is zero if the
// region is closed or the file cannot be inspected.
func (r *Region) Stats() RegionStats {
	st := RegionStats{VM: r.vm, Slots: r.slots}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return st
	}
	if n, err := allocatedBytes(r.file); err == nil {
		st.ResidentBytes = n
	}
	return st
}

func (r *Region) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Swap(true) {
		return nil
	}
	err := unmap(r.mem)
	return errors.Join(err, r.file.Close())
}
