//go:build linux

package kvmhost

import (
	"context"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

const (
	loadChunk     = 1024 // pages read from the image per batch
	spreadRun     = 64   // consecutive remote pages that go to one sub-host
	residentGroup = 16   // resident pages are chosen in groups this long, spread evenly
)

// load copies the image in. A page of zeros is never written anywhere: it
// stays a hole of the memfd under a local word, as a frame the guest never
// wrote (a fault fills it with zeros, a reader of the hole reads zeros). Of
// the pages with content, ResidentPct are written into the memfd (before it
// is registered, so they are simply present) and the others go straight
// from the image to sub-host slots, so the memfd keeps a hole where they
// are too. Every remote page's word is remote, generation 1. The resident
// limit is ResidentPct of the pages with content.
func (r *Runtime) load(ctx context.Context, cfg Config) error {
	pct := uint64(cfg.ResidentPct)
	buf := make([]byte, loadChunk*fabric.PageSize)
	var remoteRun int
	var data uint64 // pages with content so far: the resident choice counts these
	for i := 0; i < len(r.backed); {
		// a chunk of consecutive frames
		n := 1
		for n < loadChunk && i+n < len(r.backed) && r.backed[i+n] == r.backed[i]+fabric.GFN(n) {
			n++
		}
		first := r.backed[i]
		chunk := buf[:n*fabric.PageSize]
		rg := []physmem.Range{{Addr: first.Addr(), Buf: chunk}}
		if err := cfg.Memory.ReadPhys(rg); err != nil {
			return fmt.Errorf("split memory: read image at %#x+%#x: %w", first.Addr(), len(chunk), err)
		}
		batches := make([][]fabric.SlotIO, len(r.subs))
		var batchGFN = make([][]fabric.GFN, len(r.subs))
		for j := range n {
			g := first + fabric.GFN(j)
			page := chunk[j*fabric.PageSize : (j+1)*fabric.PageSize]
			if isZeroPage(page) {
				r.empty++
				continue
			}
			grp := data / residentGroup
			data++
			if pct == 100 || (grp+1)*pct/100 > grp*pct/100 {
				if _, err := unix.Pwrite(int(r.ram.Fd()), page, int64(g.Addr())); err != nil {
					return fmt.Errorf("split memory: write gfn %#x into guest ram: %w", uint64(g), err)
				}
				r.flags[g] |= flagResident
				r.resident++
				continue
			}
			if remoteRun%spreadRun == 0 || r.slots[r.nextSub].available() == 0 {
				r.pickSub()
			}
			remoteRun++
			sub := r.nextSub
			slot, ok := r.slots[sub].get()
			if !ok {
				return fmt.Errorf("split memory: gfn %#x: %w", uint64(g), ErrNoSlots)
			}
			batches[sub] = append(batches[sub], fabric.SlotIO{Slot: slot, Buf: page})
			batchGFN[sub] = append(batchGFN[sub], g)
		}
		errs := r.writeBatches(ctx, batches)
		for sub, b := range batches {
			for k, e := range b {
				if errs[sub] != nil {
					return fmt.Errorf("split memory: write gfn %#x to sub-host %d slot %d: %w", uint64(batchGFN[sub][k]), sub, e.Slot, errs[sub])
				}
				w, err := fabric.RemoteWord(uint8(sub), e.Slot, 1)
				if err == nil {
					err = r.locs.Store(batchGFN[sub][k], w)
				}
				if err != nil {
					return fmt.Errorf("split memory: %w", err)
				}
				r.c.remote.Add(1)
			}
		}
		i += n
	}
	r.limit = max(r.resident, residentLimit(data, cfg.ResidentPct))
	r.c.resident.Store(r.resident)
	return nil
}

// isZeroPage reports whether page holds only zero bytes.
func isZeroPage(page []byte) bool {
	for _, w := range unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(page))), len(page)/8) {
		if w != 0 {
			return false
		}
	}
	return true
}

// pickSub moves nextSub to the next sub-host (round robin) with a free slot.
func (r *Runtime) pickSub() bool {
	for k := 1; k <= len(r.subs); k++ {
		s := (r.nextSub + k) % len(r.subs)
		if r.slots[s].available() > 0 {
			r.nextSub = s
			return true
		}
	}
	return false
}

// writeBatches writes each sub-host's batch, all sub-hosts at once, and
// returns per sub-host the batch error (entries carry their own).
func (r *Runtime) writeBatches(ctx context.Context, batches [][]fabric.SlotIO) []error {
	return r.slotBatches(ctx, batches, fabric.Transport.WriteSlots)
}

func (r *Runtime) readBatches(ctx context.Context, batches [][]fabric.SlotIO) []error {
	return r.slotBatches(ctx, batches, fabric.Transport.ReadSlots)
}

func (r *Runtime) slotBatches(ctx context.Context, batches [][]fabric.SlotIO,
	op func(fabric.Transport, context.Context, []fabric.SlotIO) error) []error {
	errs := make([]error, len(batches))
	busy := 0
	for _, b := range batches {
		if len(b) > 0 {
			busy++
		}
	}
	done := make(chan struct{}, len(batches))
	started := 0
	for sub, b := range batches {
		if len(b) == 0 {
			continue
		}
		if busy == 1 { // no goroutine handoff (the fault handler is a locked thread)
			errs[sub] = op(r.subs[sub], ctx, b)
			continue
		}
		started++
		go func() {
			errs[sub] = op(r.subs[sub], ctx, b)
			done <- struct{}{}
		}()
	}
	for range started {
		<-done
	}
	return errs
}
