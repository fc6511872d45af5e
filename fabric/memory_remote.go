package fabric

import (
	"context"
	"fmt"
	"sync"
	"time"
)

var pagePool = sync.Pool{New: func() any { return new([PageSize]byte) }}

func getPage() []byte  { return pagePool.Get().(*[PageSize]byte)[:] }
func putPage(p []byte) { pagePool.Put((*[PageSize]byte)(p)) }

// fetchGroup is one sub-host's share of a round: one transport batch.
type fetchGroup struct {
	sub  uint8
	ios  []SlotIO
	ents []fetchEnt
	err  error
}

// fetchEnt ties an entry of the round to the transport entry it reads from.
type fetchEnt struct {
	j      int
	io     int
	direct bool // the transport fills the piece's bytes in place
}

// fetchScratch is fetch's reusable state in a readBatch.
type fetchScratch struct {
	groups []fetchGroup
	slots  map[uint64]uint64 // sub-host<<40 | slot -> group<<32 | index in its ios
}

// fetch reads the remote entries js straight from their sub-hosts: one
// transport batch per sub-host, concurrently when there are several, and a
// page wanted twice is fetched once. A page wanted whole lands in the
// caller's buffer; others go through a scratch page. With keep, each
// fetched page is also recorded for the cache, which copies it from there
// once the read is verified (still within this call, so a caller's buffer
// is as good a source as a scratch page, and costs no allocation).
func (m *Memory) fetch(b *readBatch, js []int, keep bool) {
	fs := &b.fetch
	for i := range fs.groups {
		g := &fs.groups[i]
		clear(g.ios) // drop the caller's buffers
		g.ios, g.ents, g.err = g.ios[:0], g.ents[:0], nil
	}
	fs.groups = fs.groups[:0]
	if fs.slots == nil {
		fs.slots = make(map[uint64]uint64)
	}
	clear(fs.slots)
	for _, j := range js {
		w := b.curW[j]
		gi := 0
		for gi < len(fs.groups) && fs.groups[gi].sub != w.SubHost() {
			gi++
		}
		if gi == len(fs.groups) {
			if cap(fs.groups) > gi {
				fs.groups = fs.groups[:gi+1]
			} else {
				fs.groups = append(fs.groups, fetchGroup{})
			}
			fs.groups[gi].sub = w.SubHost()
		}
		g := &fs.groups[gi]
		key := uint64(w.SubHost())<<40 | w.Slot()
		if v, ok := fs.slots[key]; ok {
			g.ents = append(g.ents, fetchEnt{j: j, io: int(uint32(v))})
			continue
		}
		p := &b.pieces[b.cur[j]]
		direct := p.off == 0 && len(p.dst) == PageSize
		buf := p.dst
		if !direct {
			buf = getPage()
			b.scratch = append(b.scratch, buf)
		}
		fs.slots[key] = uint64(gi)<<32 | uint64(len(g.ios))
		g.ents = append(g.ents, fetchEnt{j: j, io: len(g.ios), direct: direct})
		g.ios = append(g.ios, SlotIO{Slot: w.Slot(), Buf: buf})
	}
	ctx := m.remoteCtx(b)
	run := func(g *fetchGroup) {
		tr, ok := m.cfg.Subhosts[g.sub]
		if !ok || tr == nil {
			g.err = fmt.Errorf("sub-host %d: %w", g.sub, ErrNoSubhost)
			return
		}
		_ = tr.ReadSlots(ctx, g.ios)
	}
	if len(fs.groups) == 1 {
		run(&fs.groups[0])
	} else {
		var wg sync.WaitGroup
		for i := range fs.groups {
			wg.Go(func() { run(&fs.groups[i]) })
		}
		wg.Wait()
	}
	var fetched uint64
	// The recheck of the words comes after this: the fetched pages are
	// verified observations of their words no earlier than now.
	var done time.Time
	if keep {
		done = time.Now()
	}
	for gi := range fs.groups {
		g := &fs.groups[gi]
		if g.err == nil {
			for _, io := range g.ios {
				if io.Err == nil {
					fetched++
				}
			}
		}
		for _, e := range g.ents {
			io := &g.ios[e.io]
			err := g.err
			if err == nil {
				err = io.Err
			}
			i := b.cur[e.j]
			if err != nil {
				b.curE[e.j] = fmt.Errorf("gfn %#x on sub-host %d slot %d: %w", uint64(b.gfns[i]), g.sub, io.Slot, err)
				continue
			}
			p := &b.pieces[i]
			if !e.direct {
				copy(p.dst, io.Buf[p.off:])
			}
			if keep {
				b.fillOf[i] = len(b.fills)
				b.fills = append(b.fills, cacheFill{word: b.curW[e.j], buf: io.Buf, seen: done, inPlace: e.direct})
			}
		}
	}
	m.stats.fetched.Add(fetched)
}

// exchange asks the Exchanger to make the remote frames of js resident,
// with at most half of the call's remaining time, so that a silent
// exchanger still leaves time to read by proxy. No answer is trusted: the
// word of each frame answered done is loaded again, and a frame whose word
// has not moved (still remote, same generation) is read by proxy and
// counted unverified; the others are marked for a local re-read (their
// words changed, so the protocol retries them; if a word held still the
// outer loop does). Frames it failed are read by proxy and counted.
func (m *Memory) exchange(b *readBatch, js []int) {
	gfns := make([]GFN, 0, len(js))
	first := make(map[GFN]int, len(js)) // gfn -> index in gfns
	before := make([]Word, 0, len(js))
	for _, j := range js {
		g := b.curG[j]
		if _, ok := first[g]; !ok {
			first[g] = len(gfns)
			gfns = append(gfns, g)
			before = append(before, b.curW[j])
		}
	}
	ctx := m.remoteCtx(b)
	xctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		xctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/2))
	}
	errs := m.cfg.Exchanger.MakeResident(xctx, gfns)
	cancel()
	moved := make([]bool, len(gfns))
	var made, failed, unmoved uint64
	for k, g := range gfns {
		switch {
		case k >= len(errs) || errs[k] != nil:
			failed++
		case m.cfg.Locations.Load(g) == before[k]:
			unmoved++
		default:
			moved[k] = true
			made++
		}
	}
	b.proxy = b.proxy[:0]
	for _, j := range js {
		if moved[first[b.curG[j]]] {
			b.curE[j] = errExchanged
			continue
		}
		b.proxy = append(b.proxy, j)
	}
	m.stats.exchanged.Add(made)
	m.stats.fallbacks.Add(failed)
	m.stats.unverified.Add(unmoved)
	if a, ok := m.cfg.Exchanger.(ExchangeAuditor); ok && made+unmoved > 0 {
		a.Audit(int(made+unmoved), int(unmoved))
	}
	if len(b.proxy) > 0 {
		m.fetch(b, b.proxy, false)
	}
}

// readCached serves the remote entries of js from the cache where it holds
// the page under the same word, and fetches the rest (kept for the cache).
func (m *Memory) readCached(b *readBatch, js []int) {
	b.proxy = b.proxy[:0]
	var hits uint64
	for _, j := range js {
		p := &b.pieces[b.cur[j]]
		if m.cache.get(b.curG[j], b.curW[j], p.off, p.dst, b.round) {
			hits++
			continue
		}
		b.proxy = append(b.proxy, j)
	}
	m.stats.hits.Add(hits)
	m.stats.misses.Add(uint64(len(b.proxy)))
	if len(b.proxy) > 0 {
		m.fetch(b, b.proxy, true)
	}
}
