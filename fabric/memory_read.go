package fabric

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// Internal outcomes of one read round, settled by the outer loop of
// readPieces once the word held still (so ReadStableBatch did not retry).
var (
	// errHole: the word said local but the view faulted: if the word held
	// still, the frame was never written and reads as zeros.
	errHole = errors.New("local page is a hole")
	// errExchanged: the Exchanger made the frame resident; read it locally.
	errExchanged = errors.New("frame exchanged, read pending")
)

// holdRounds is how many times readPieces re-runs the read protocol for
// pages whose word held still but whose read must be redone (errExchanged),
// before it reports them failed.
const holdRounds = 4

// piece is the part of one range that lies in one guest page.
type piece struct {
	rng int    // index of the range
	off int    // offset of dst's first byte within the page
	dst []byte // the range's bytes in this page
}

// readBatch is the scratch state of one ReadPhys call, pooled.
type readBatch struct {
	pieces []piece
	gfns   []GFN
	words  []Word
	errs   []error
	reads  []uint16 // how often each piece was read (Retries)

	// The entries of the current ReadStableBatch (all pieces in the first
	// round, the held ones after): cur[j] is the piece index of entry j.
	cur  []int
	curG []GFN
	curW []Word
	curE []error

	scratchIdx batchScratch
	fetch      fetchScratch
	remote     []int
	proxy      []int
	fills      []cacheFill
	fillOf     []int // piece -> its pending fill in fills, or -1
	deferred   *[]pageFill
	scratch    [][]byte // page buffers on loan from pagePool

	// round is no later than the word loads of the current round of the
	// read protocol (the adaptive cache's observation time)
	round  time.Time
	ctx    context.Context
	cancel context.CancelFunc
}

func (m *Memory) getBatch() *readBatch {
	if b, ok := m.batches.Get().(*readBatch); ok {
		return b
	}
	return &readBatch{}
}

func (m *Memory) putBatch(b *readBatch) {
	if b.cancel != nil {
		b.cancel()
	}
	for _, s := range b.scratch {
		putPage(s)
	}
	clear(b.pieces) // drop references to the caller's buffers
	clear(b.errs)
	clear(b.curE)
	clear(b.fills)
	clear(b.scratch)
	b.pieces, b.gfns, b.scratch, b.fills = b.pieces[:0], b.gfns[:0], b.scratch[:0], b.fills[:0]
	b.ctx, b.cancel, b.deferred = nil, nil, nil
	if cap(b.pieces) > 1<<16 { // do not pin the scratch of one huge batch
		return
	}
	m.batches.Put(b)
}

// remoteCtx is the deadline of this call's remote work, made on first use
// so that batches of local pages pay nothing for it.
func (m *Memory) remoteCtx(b *readBatch) context.Context {
	if b.ctx == nil {
		b.ctx, b.cancel = m.remoteContext()
	}
	return b.ctx
}

// ReadPhys fills every range it can. Ranges may have any length and
// alignment; they are split into page pieces and every piece of the call is
// read under one run of the location-word protocol, local pieces from guest
// RAM on this host and remote ones by the configured method, with all the
// remote pages of a round in one transport batch per sub-host. A range
// outside the layout fails with physmem.ErrOutOfRange; a range with a piece
// that cannot be read (a dead or slow sub-host, a page that never holds
// still) gets that piece's error. The batch error wraps physmem.ErrPartial,
// and fabric.ErrPartial too when the fabric failed a read.
func (m *Memory) ReadPhys(ranges []physmem.Range) error {
	return m.readPhys(ranges, nil)
}

// readPhys is ReadPhys. With deferred, verified fetches whose bytes are in
// the ranges' own buffers are appended to it instead of going into the
// adaptive cache: the caller puts them later (putFills), off the path of
// its next read, while those buffers still hold them.
func (m *Memory) readPhys(ranges []physmem.Range, deferred *[]pageFill) error {
	b := m.getBatch()
	defer m.putBatch(b)
	b.deferred = deferred
	failed := 0
	for r := range ranges {
		rg := &ranges[r]
		rg.Err = nil
		n := uint64(len(rg.Buf))
		if n == 0 {
			continue
		}
		if !layoutCovers(m.layout, rg.Addr, n) {
			rg.Err = fmt.Errorf("read %#x+%d: %w", rg.Addr, n, physmem.ErrOutOfRange)
			failed++
			continue
		}
		addr, buf := rg.Addr, rg.Buf
		for len(buf) > 0 {
			off := int(addr & (PageSize - 1))
			l := min(len(buf), PageSize-off)
			b.pieces = append(b.pieces, piece{rng: r, off: off, dst: buf[:l:l]})
			b.gfns = append(b.gfns, GFNOf(addr))
			buf, addr = buf[l:], addr+uint64(l)
		}
	}
	fabricFailed := 0
	if len(b.pieces) > 0 {
		m.readPieces(b)
		for i, err := range b.errs[:len(b.pieces)] {
			if err == nil {
				continue
			}
			rg := &ranges[b.pieces[i].rng]
			if rg.Err == nil {
				rg.Err = fmt.Errorf("read %#x+%d: %w", rg.Addr, len(rg.Buf), err)
				failed++
				fabricFailed++
			}
		}
	}
	switch {
	case failed == 0:
		return nil
	case fabricFailed > 0:
		return fmt.Errorf("fabric memory: %d of %d ranges failed: %w (%w)", failed, len(ranges), physmem.ErrPartial, ErrPartial)
	default:
		return fmt.Errorf("fabric memory: %d of %d ranges failed: %w", failed, len(ranges), physmem.ErrPartial)
	}
}

// readPieces runs the read protocol over every piece of b, then re-runs it
// (a few times) for the pieces whose word held still while their read has
// to be redone: a local fault, or a frame just made resident.
func (m *Memory) readPieces(b *readBatch) {
	n := len(b.pieces)
	b.words = grow(b.words, n)
	b.errs = grow(b.errs, n)
	b.reads = grow(b.reads, n)
	clear(b.reads)
	b.cur = grow(b.cur, n)
	for i := range b.cur {
		b.cur[i] = i
	}
	if m.cache != nil {
		b.round = time.Now()
	}
	curG, curW, curE := b.gfns[:n], b.words[:n], b.errs[:n]
	round := func(pending []int) error { m.readRound(b, pending); return nil }
	var verified func(j int)
	if m.cache != nil {
		// A fetched page goes into the cache as soon as its recheck
		// passes, while that observation of its word is fresh.
		b.fillOf = grow(b.fillOf, n)
		for i := range b.fillOf {
			b.fillOf[i] = -1
		}
		verified = func(j int) {
			i := b.cur[j]
			if k := b.fillOf[i]; k >= 0 {
				b.fillOf[i] = -1
				switch f := &b.fills[k]; {
				case b.curE[j] != nil || b.curW[j] != f.word:
				case b.deferred != nil && f.inPlace:
					*b.deferred = append(*b.deferred, pageFill{gfn: b.gfns[i], cacheFill: *f})
				default:
					m.cache.put(b.gfns[i], f.word, f.buf, f.seen)
				}
			}
		}
	}
	// A frame that kept moving through every retry of the protocol (a
	// runtime descheduled mid-move on a loaded host) is tried again until
	// the call's timeout, like a slow sub-host.
	deadline := time.Now().Add(m.timeout)
	for hold := 0; ; hold++ {
		b.curG, b.curW, b.curE = curG, curW, curE
		_ = readStableBatch(m.cfg.Locations, curG, curW, curE, MaxReadRetries, &b.scratchIdx, round, verified)
		held := 0
		for j, i := range b.cur {
			if hold > 0 {
				b.words[i], b.errs[i] = curW[j], curE[j]
			}
			err := curE[j]
			switch {
			case err == errHole:
				// The word held local across a read that found no page: the
				// frame was never written (the runtime punches a page only
				// after publishing its remote word, and fills one only before
				// publishing its local word), so it reads as zeros.
				clear(b.pieces[i].dst)
				curE[j], b.errs[i] = nil, nil
				continue
			case err == errExchanged:
				if hold >= holdRounds {
					b.errs[i] = heldError(b.gfns[i], b.words[i])
					continue
				}
			case err != nil && curW[j] == InvalidWord && errors.Is(err, ErrUnstable):
				if !time.Now().Before(deadline) {
					continue
				}
			default:
				continue
			}
			b.cur[held] = i
			held++
		}
		if held == 0 {
			break
		}
		time.Sleep(time.Duration(min(hold+1, 10)) * 100 * time.Microsecond)
		b.cur = b.cur[:held]
		curG, curW, curE = grow(b.curG[:0], held), grow(b.curW[:0], held), grow(b.curE[:0], held)
		if hold == 0 { // the first round's arrays are b's own: do not overwrite them
			curG, curW, curE = make([]GFN, held), make([]Word, held), make([]error, held)
		}
		for j, i := range b.cur {
			curG[j] = b.gfns[i]
		}
	}
	m.account(b)
}

func heldError(g GFN, w Word) error {
	return fmt.Errorf("gfn %#x (%v): made resident %d times, still not local: %w", uint64(g), w, holdRounds+1, ErrUnstable)
}

// account updates the counters after the call and hands verified fetches
// to the cache.
func (m *Memory) account(b *readBatch) {
	var local, failed, retries uint64
	for i := range b.pieces {
		if r := b.reads[i]; r > 1 {
			retries += uint64(r - 1)
		}
		switch {
		case b.errs[i] != nil:
			failed++
		case b.words[i].State() == StateLocal:
			local++
		}
	}
	s := &m.stats
	s.local.Add(local)
	s.failed.Add(failed)
	s.retries.Add(retries)
}

// readRound reads the pending entries of one round under the words just
// loaded: local ones from guest RAM here, remote ones by the method.
func (m *Memory) readRound(b *readBatch, pending []int) {
	b.remote = b.remote[:0]
	nlocal := 0
	for _, j := range pending {
		b.reads[b.cur[j]]++
		if b.curW[j].State() == StateRemote {
			b.remote = append(b.remote, j)
		} else {
			nlocal++
		}
	}
	if nlocal > 0 {
		m.readLocal(b, pending)
	}
	if len(b.remote) == 0 {
		return
	}
	switch m.cfg.Method {
	case MethodSelf:
		m.exchange(b, b.remote)
	case MethodAdaptive:
		m.readCached(b, b.remote)
		b.round = time.Now() // the loads of a retry come after this
	default:
		m.fetch(b, b.remote, false)
	}
}

// readLocal copies the local entries of pending from guest RAM.
func (m *Memory) readLocal(b *readBatch, pending []int) {
	old := m.local.guard()
	defer m.local.unguard(old)
	var faults uint64
	for k := 0; k < len(pending); {
		k = m.readLocalFrom(b, pending, k, &faults)
	}
	if faults > 0 {
		m.stats.faults.Add(faults)
	}
}

// readLocalFrom reads the local entries of pending from index k on and
// returns where to go on: len(pending) when done, or just past an entry
// whose read faulted in the view (a hole: marked errHole). One deferred
// recover serves the whole loop, so a page read costs no call of its own.
// pread reads runs of consecutive pages of one range with one call.
func (m *Memory) readLocalFrom(b *readBatch, pending []int, k int, faults *uint64) (next int) {
	view := m.local.view
	cur := k
	if view != nil {
		defer func() {
			if r := recover(); r != nil {
				view.checkFault(r)
				b.curE[pending[cur]] = errHole
				*faults++
				next = cur + 1
			}
		}()
	}
	for k < len(pending) {
		j := pending[k]
		if b.curW[j].State() != StateLocal {
			k++
			continue
		}
		i := b.cur[j]
		p := &b.pieces[i]
		off := b.gfns[i].Addr() + uint64(p.off)
		if view != nil {
			cur = k
			copy(p.dst, view.mem[off:off+uint64(len(p.dst))])
			k++
			continue
		}
		e := k + 1
		for e < len(pending) {
			j2 := pending[e]
			i2 := b.cur[j2]
			if i2 != i+(e-k) || b.curW[j2].State() != StateLocal || b.pieces[i2].rng != p.rng {
				break
			}
			e++
		}
		if e-k == 1 {
			if err := m.local.pread(p.dst, off); err != nil {
				b.curE[j] = err
			}
			k = e
			continue
		}
		if err := m.local.pread(joinPieces(b, i, b.cur[pending[e-1]]), off); err != nil {
			for _, j := range pending[k:e] {
				p := &b.pieces[b.cur[j]]
				if err := m.local.pread(p.dst, b.gfns[b.cur[j]].Addr()+uint64(p.off)); err != nil {
					b.curE[j] = err
				}
			}
		}
		k = e
	}
	return len(pending)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// joinPieces is the destination bytes of the pieces first..last of one
// range, which follow each other in its Buf.
func joinPieces(b *readBatch, first, last int) []byte {
	n := 0
	for i := first; i <= last; i++ {
		n += len(b.pieces[i].dst)
	}
	return unsafe.Slice(unsafe.SliceData(b.pieces[first].dst), n)
}
