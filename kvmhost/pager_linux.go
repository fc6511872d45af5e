//go:build linux

package kvmhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
)

const (
	// pageInBatchMax bounds the pages one page-in round reads (4 MiB).
	pageInBatchMax = 1024
	// runMax bounds a contiguous run fenced and punched by one ioctl.
	runMax = 256
)

// evictSlack is how many pages beyond the strict need an eviction round
// frees, so that the faults after it find room without evicting again.
func (r *Runtime) evictSlack() uint64 { return min(evictBatchMax, max(1, r.limit/8)) }

// makeRoom evicts so that need more pages fit under the resident limit.
// Evictions are the runtime's own business: they run under moveTimeout,
// not under the context of the request that needed the room. r.mu is held.
func (r *Runtime) makeRoom(need uint64) {
	if r.resident+need <= r.limit {
		return
	}
	want := r.resident + need - r.limit + r.evictSlack()
	for want > 0 {
		n := min(want, evictBatchMax)
		victims := r.pickVictims(int(n))
		if len(victims) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), moveTimeout)
		out := r.pageOut(ctx, victims)
		cancel()
		if out == 0 {
			return
		}
		want -= min(want, uint64(out))
	}
}

// pickVictims runs the clock: a resident page used since the hand last
// passed (paged in, requested, or touched by a vCPU: the accessed bit the
// workload sets, as hardware would) gets a second chance, the others are
// taken. r.mu is held.
func (r *Runtime) pickVictims(n int) []fabric.GFN {
	var v []fabric.GFN
	for scanned := 0; len(v) < n && scanned < 2*len(r.backed); scanned++ {
		g := r.backed[r.hand]
		r.hand = (r.hand + 1) % len(r.backed)
		f := r.flags[g]
		switch {
		case f&flagResident == 0:
		case f&flagRef != 0 || atomic.SwapUint32(&r.accessed[g], 0) != 0:
			r.flags[g] &^= flagRef
		default:
			v = append(v, g)
		}
	}
	slices.Sort(v)
	return slices.Compact(v) // the second lap may meet a page the first took
}

// runs splits sorted frames into contiguous runs of at most max frames.
func runs(gs []fabric.GFN, limit int) [][]fabric.GFN {
	var out [][]fabric.GFN
	for i := 0; i < len(gs); {
		j := i + 1
		for j < len(gs) && j-i < limit && gs[j] == gs[j-1]+1 {
			j++
		}
		out = append(out, gs[i:j])
		i = j
	}
	return out
}

type move struct {
	g     fabric.GFN
	sub   int
	slot  uint64
	old   fabric.Word // the word before the move, still published during it
	entry int         // index in its sub-host's batch
	err   error
}

// pageOut writes victims (resident, sorted) to free slots, in the fence
// order that loses no concurrent write: write-protect (r.mu, held, is the
// "moving" mark the fault handler honours: it holds every write-protect
// fault until this is done); copy out (pread of the memfd, never a touch of
// the mapping); write to the slot; word remote; punch the hole; unprotect
// (which wakes the writers held meanwhile, whose retry faults the page back
// in).
//
// The published word goes straight from local to remote (one generation),
// never through moving: while the page is fenced its local copy is exactly
// what goes out, so a reader of the local word reads valid content until
// the remote word is published, and the punch comes only after that (a
// reader racing it faults or reads a hole, and its word recheck sees the
// change). Readers thus never wait out a page-out. It returns how many
// pages went out.
func (r *Runtime) pageOut(ctx context.Context, victims []fabric.GFN) int {
	var moves []move
	batches := make([][]fabric.SlotIO, len(r.subs))
	rs := runs(victims, runMax)
	buf := r.scratch(&r.outBuf, len(victims))
	off := 0
	var fenced [][]fabric.GFN
	for _, run := range rs {
		first := len(moves)
		for _, g := range run {
			if r.slots[r.nextSub].available() == 0 && !r.pickSub() {
				break
			}
			slot, _ := r.slots[r.nextSub].get()
			if slot > fabric.MaxSlot { // cannot happen for regions a word can name
				r.slots[r.nextSub].put(slot)
				break
			}
			moves = append(moves, move{g: g, sub: r.nextSub, slot: slot, old: r.locs.Load(g)})
		}
		run = run[:len(moves)-first]
		if len(run) == 0 {
			break
		}
		fenced = append(fenced, run)
		err := r.uf.WriteProtect(r.addr(run[0]), uintptr(len(run))*fabric.PageSize, true, false)
		page := buf[off : off+len(run)*fabric.PageSize]
		if err == nil {
			_, err = unix.Pread(int(r.ram.Fd()), page, int64(run[0].Addr()))
		}
		for k := range run {
			m := &moves[first+k]
			m.err = err
			if err == nil {
				m.entry = len(batches[m.sub])
				batches[m.sub] = append(batches[m.sub], fabric.SlotIO{Slot: m.slot, Buf: page[k*fabric.PageSize : (k+1)*fabric.PageSize]})
			}
		}
		off += len(page)
		r.pickSub() // the next run goes to the next sub-host
	}
	if len(moves) == 0 {
		return 0
	}
	berrs := r.writeBatches(ctx, batches)
	out := 0
	var gone []fabric.GFN
	for i := range moves {
		m := &moves[i]
		if m.err == nil {
			if m.err = batches[m.sub][m.entry].Err; m.err == nil && berrs[m.sub] != nil && !errors.Is(berrs[m.sub], fabric.ErrPartial) {
				m.err = berrs[m.sub]
			}
		}
		if m.err == nil {
			w, _ := m.old.ToRemote(uint8(m.sub), m.slot)
			r.locs.Store(m.g, w)
			r.flags[m.g] &^= flagResident | flagRef
			gone = append(gone, m.g)
			out++
			continue
		}
		// The page stays, its word untouched: it was fenced, so nothing
		// was written meanwhile.
		r.slots[m.sub].put(m.slot)
		r.c.pageOutErrs.Add(1)
		r.log.Warn().Err(m.err).Uint64("gfn", uint64(m.g)).Int("subhost", m.sub).Msg("page-out failed; page stays resident")
	}
	for _, run := range runs(gone, runMax) {
		if err := unix.Fallocate(int(r.ram.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE,
			int64(run[0].Addr()), int64(len(run))*fabric.PageSize); err != nil {
			// The content is safe remotely; the memfd merely keeps a stale
			// copy that a later fault would never see (EEXIST).
			r.log.Error().Err(err).Uint64("gfn", uint64(run[0])).Int("pages", len(run)).Msg("punch hole failed")
		}
	}
	for _, run := range fenced {
		if err := r.uf.WriteProtect(r.addr(run[0]), uintptr(len(run))*fabric.PageSize, false, false); err != nil {
			r.log.Error().Err(err).Uint64("gfn", uint64(run[0])).Msg("unprotect failed")
		}
	}
	r.resident -= uint64(out)
	r.c.resident.Store(r.resident)
	r.c.remote.Add(uint64(out))
	r.c.pageOuts.Add(uint64(out))
	return out
}

// pageIn brings the given frames (backed, sorted, unique) in, evicting
// victims first to stay under the limit. Frames already resident succeed
// at once and count as used. errs[i] is the result for gs[i]. r.mu is held.
//
// As for pageOut, the word goes straight from remote to local (one
// generation): the slot keeps the page until the local word is published,
// so a reader of the remote word reads valid content throughout, and the
// slot is freed (for a later page-out to reuse) only after the change.
func (r *Runtime) pageIn(ctx context.Context, gs []fabric.GFN) (errs []error, brought int) {
	errs = make([]error, len(gs))
	var need []int // indexes into gs
	for i, g := range gs {
		if r.flags[g]&flagResident != 0 {
			r.flags[g] |= flagRef
			continue
		}
		if r.locs.Load(g).State() == fabric.StateLocal {
			continue // never written: local already, it reads as zeros
		}
		need = append(need, i)
	}
	step := max(1, min(int(r.limit/2), pageInBatchMax))
	for len(need) > 0 {
		part := need[:min(step, len(need))]
		need = need[len(part):]
		r.makeRoom(uint64(len(part)))
		brought += r.pageInPart(ctx, gs, part, errs)
	}
	return errs, brought
}

func (r *Runtime) pageInPart(ctx context.Context, gs []fabric.GFN, part []int, errs []error) int {
	batches := make([][]fabric.SlotIO, len(r.subs))
	moves := make([]move, len(part))
	buf := r.scratch(&r.inBuf, len(part))
	for k, i := range part {
		g := gs[i]
		old := r.locs.Load(g)
		m := &moves[k]
		m.g = g
		if old.State() != fabric.StateRemote {
			m.err = fmt.Errorf("page in gfn %#x: location %v is not remote: %w", uint64(g), old, fabric.ErrBadLocation)
			continue
		}
		m.sub, m.slot, m.old = int(old.SubHost()), old.Slot(), old
		if m.sub >= len(r.subs) {
			m.err = fmt.Errorf("page in gfn %#x: sub-host %d unknown: %w", uint64(g), m.sub, fabric.ErrBadLocation)
			continue
		}
		m.entry = len(batches[m.sub])
		batches[m.sub] = append(batches[m.sub], fabric.SlotIO{Slot: m.slot, Buf: buf[k*fabric.PageSize : (k+1)*fabric.PageSize]})
	}
	berrs := r.readBatches(ctx, batches)
	for k := range moves {
		m := &moves[k]
		if m.err == nil {
			if m.err = batches[m.sub][m.entry].Err; m.err == nil && berrs[m.sub] != nil && !errors.Is(berrs[m.sub], fabric.ErrPartial) {
				m.err = berrs[m.sub]
			}
		}
	}
	// Install contiguous runs of fetched pages with one copy each.
	for k := 0; k < len(moves); {
		if moves[k].err != nil {
			k++
			continue
		}
		j := k + 1
		for j < len(moves) && moves[j].err == nil && moves[j].g == moves[j-1].g+1 && j-k < runMax {
			j++
		}
		if err := r.uf.Copy(r.addr(moves[k].g), buf[k*fabric.PageSize:j*fabric.PageSize], false); err != nil {
			for x := k; x < j; x++ {
				moves[x].err = err
			}
		}
		k = j
	}
	in := 0
	for k, i := range part {
		m := &moves[k]
		switch {
		case m.err == nil:
			r.locs.Store(m.g, m.old.ToLocal())
			r.slots[m.sub].put(m.slot) // only now: a reader of the old word may still read it
			r.flags[m.g] |= flagResident | flagRef
			in++
		case m.old != 0:
			r.c.pageInErrs.Add(1) // still where it was, word untouched
			fallthrough
		default:
			errs[i] = fmt.Errorf("page in gfn %#x: %w", uint64(m.g), m.err)
		}
	}
	r.resident += uint64(in)
	r.c.resident.Store(r.resident)
	r.c.remote.Add(^uint64(in - 1))
	r.c.pageIns.Add(uint64(in))
	return in
}

// scratch returns pages pages of *b, growing it. Every move holds r.mu, so
// one buffer per direction serves them all and moves allocate no pages
// (fewer collections, each of which must preempt vCPUs blocked in faults).
func (r *Runtime) scratch(b *[]byte, pages int) []byte {
	if n := pages * fabric.PageSize; len(*b) < n {
		*b = make([]byte, n)
	}
	return (*b)[:pages*fabric.PageSize]
}
