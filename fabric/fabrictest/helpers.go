package fabrictest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// callTimeout bounds every single Transport call of the suite: a call that
// takes longer counts as hung.
const callTimeout = 15 * time.Second

// page returns deterministic content for (slot, version): every byte depends
// on both, so a page from the wrong slot or an older write is caught.
func page(slot, version uint64) []byte {
	b := make([]byte, fabric.PageSize)
	fillPage(b, slot, version)
	return b
}

func fillPage(b []byte, slot, version uint64) {
	rng := rand.New(rand.NewPCG(slot, version))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	binary.LittleEndian.PutUint64(b, slot)
	binary.LittleEndian.PutUint64(b[8:], version)
}

// distinctSlots returns n different random slots below limit.
func distinctSlots(rng *rand.Rand, n int, limit uint64) []uint64 {
	perm := rng.Perm(int(limit))
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(perm[i])
	}
	return out
}

func writeBatch(slots []uint64, version uint64) []fabric.SlotIO {
	b := make([]fabric.SlotIO, len(slots))
	for i, s := range slots {
		b[i] = fabric.SlotIO{Slot: s, Buf: page(s, version)}
	}
	return b
}

func readBatch(slots []uint64) []fabric.SlotIO {
	b := make([]fabric.SlotIO, len(slots))
	for i, s := range slots {
		b[i] = fabric.SlotIO{Slot: s, Buf: make([]byte, fabric.PageSize)}
	}
	return b
}

// contentErr reports the entries whose buffer is not page(slot, version).
func contentErr(batch []fabric.SlotIO, version uint64) error {
	bad, first := 0, -1
	for i, e := range batch {
		if !bytes.Equal(e.Buf, page(e.Slot, version)) {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad == 0 {
		return nil
	}
	e := batch[first]
	head := e.Buf[:min(16, len(e.Buf))]
	return fmt.Errorf("%d of %d pages differ from what was written; first: slot %d begins %x", bad, len(batch), e.Slot, head)
}

// checkContent fails t unless every entry holds page(slot, version).
func checkContent(t testing.TB, batch []fabric.SlotIO, version uint64) {
	t.Helper()
	if err := contentErr(batch, version); err != nil {
		t.Fatal(err)
	}
}

// batchFailure checks the error of a batch that failed after the peer died
// or the transport closed: either the whole batch failed with one of want
// (and every entry says so), or it wraps ErrPartial (part of it was served
// first) and every failed entry wraps one of want.
func batchFailure(err error, batch []fabric.SlotIO, want ...error) error {
	if errors.Is(err, fabric.ErrPartial) {
		for _, e := range batch {
			if e.Err != nil && !isOneOf(e.Err, want...) {
				return fmt.Errorf("entry for slot %d failed with %w, want one of %v", e.Slot, e.Err, want)
			}
		}
		return nil
	}
	if !isOneOf(err, want...) {
		return fmt.Errorf("batch failed with %w, want one of %v", err, want)
	}
	for _, e := range batch {
		if e.Err == nil {
			return fmt.Errorf("batch failed as a whole (%w) but the entry for slot %d has no Err", err, e.Slot)
		}
	}
	return nil
}

// bounded runs call and fails t if it does not return within callTimeout.
func bounded(t testing.TB, what string, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(callTimeout):
		t.Fatalf("%s did not return within %v", what, callTimeout)
		return nil
	}
}

// isOneOf reports whether err wraps any of targets.
func isOneOf(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// allEntriesFailed fails t unless every entry's Err is set (a whole-batch failure).
func allEntriesFailed(t testing.TB, what string, batch []fabric.SlotIO) {
	t.Helper()
	for i, e := range batch {
		if e.Err == nil {
			t.Fatalf("%s failed as a whole but entry %d (slot %d) has no Err", what, i, e.Slot)
		}
	}
}
