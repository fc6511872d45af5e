package rdma

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// checkEntries clears every entry's Err, fails the entries the peer cannot
// serve (slot outside the region, buffer not one page) before anything is
// posted, and returns the indices of the entries left to transfer.
func checkEntries(batch []fabric.SlotIO, slots uint64) []int {
	ok := make([]int, 0, len(batch))
	for i := range batch {
		e := &batch[i]
		e.Err = nil
		switch {
		case e.Slot >= slots:
			e.Err = fmt.Errorf("rdma slot %d of %d: %w", e.Slot, slots, fabric.ErrSlotRange)
		case len(e.Buf) != fabric.PageSize:
			e.Err = fmt.Errorf("rdma slot %d: buffer of %d bytes: %w", e.Slot, len(e.Buf), fabric.ErrBufferSize)
		default:
			ok = append(ok, i)
		}
	}
	return ok
}

// failAll sets err on every entry in idx that has no error yet.
func failAll(batch []fabric.SlotIO, idx []int, err error) {
	for _, i := range idx {
		if batch[i].Err == nil {
			batch[i].Err = err
		}
	}
}

// batchResult turns per-entry errors into the call's error as
// fabric.Transport specifies: nil, the whole-batch cause when every entry
// failed for it, or ErrPartial.
func batchResult(batch []fabric.SlotIO, cause error) error {
	failed := 0
	var first error
	for i := range batch {
		if batch[i].Err != nil {
			if first == nil {
				first = batch[i].Err
			}
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case failed == len(batch) && cause != nil:
		return cause
	default:
		return fmt.Errorf("rdma: %d of %d entries failed: %w (first: %w)", failed, len(batch), fabric.ErrPartial, first)
	}
}
