package fabric

import "fmt"

// The rules every Transport applies to a batch, so that all of them refuse
// the same entries with the same errors and report a batch's outcome alike.

// CheckSlot returns the error for a slot outside a region of slots slots
// (ErrSlotRange), or nil.
func CheckSlot(slot, slots uint64) error {
	if slot >= slots {
		return fmt.Errorf("slot %d of %d: %w", slot, slots, ErrSlotRange)
	}
	return nil
}

// CheckSlotIO returns the error a Transport gives batch entry e on a region
// of slots slots before anything is sent: the slot is outside the region
// (ErrSlotRange) or the buffer is not exactly one page (ErrBufferSize). Nil
// when the entry can be served.
func CheckSlotIO(e SlotIO, slots uint64) error {
	if err := CheckSlot(e.Slot, slots); err != nil {
		return err
	}
	if len(e.Buf) != PageSize {
		return fmt.Errorf("slot %d: buffer of %d bytes: %w", e.Slot, len(e.Buf), ErrBufferSize)
	}
	return nil
}

// StartBatch clears every entry's Err (a batch may be reused), fails the
// entries CheckSlotIO refuses, and returns the indices of the entries left
// to serve.
func StartBatch(batch []SlotIO, slots uint64) []int {
	ok := make([]int, 0, len(batch))
	for i := range batch {
		e := &batch[i]
		if e.Err = CheckSlotIO(*e, slots); e.Err == nil {
			ok = append(ok, i)
		}
	}
	return ok
}

// FailBatch fails every entry with err (the whole batch failed: a closed
// transport, a dead peer, an ended context) and returns err.
func FailBatch(batch []SlotIO, err error) error {
	for i := range batch {
		batch[i].Err = err
	}
	return err
}

// FinishBatch is a batch's return value once every entry carries its own
// outcome, as Transport specifies: nil when no entry failed; cause (the
// failure that struck the batch as a whole, or nil) when it failed every
// entry; otherwise an error wrapping ErrPartial, cause if any and the first
// entry error.
func FinishBatch(batch []SlotIO, cause error) error {
	failed := 0
	var first error
	for i := range batch {
		if err := batch[i].Err; err != nil {
			if failed++; first == nil {
				first = err
			}
		}
	}
	switch {
	case failed == 0:
		return nil
	case cause != nil && failed == len(batch):
		return cause
	case cause != nil:
		return fmt.Errorf("%d of %d entries failed: %w: %w", failed, len(batch), ErrPartial, cause)
	}
	return fmt.Errorf("%d of %d entries failed: %w (first: %w)", failed, len(batch), ErrPartial, first)
}
