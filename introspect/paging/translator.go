package paging

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// Translation is the result for one virtual address: its physical address
// and the size of the page mapping it, or Err.
type Translation struct {
	VA, PA   uint64
	PageSize uint64
	Err      error
}

// Translator walks one address space (one CR3) through a physmem.Reader.
type Translator struct {
	r    physmem.Reader
	mode Mode

	mu    sync.RWMutex
	cr3   uint64
	gen   uint64 // bumped on every invalidation, so a walk racing one does not cache stale results
	cache map[cacheKey]uint64
	max   int
}

// New returns a Translator for the page tables at cr3 in mode (FourLevel or
// FiveLevel; use ModeFromCR4). cr3 is the raw register: PCID bits are
// dropped here, the PTI user bit is not (see KernelCR3).
func New(r physmem.Reader, cr3 uint64, mode Mode) *Translator {
	if mode != FiveLevel {
		mode = FourLevel
	}
	return &Translator{r: r, mode: mode, cr3: TableBase(cr3), cache: make(map[cacheKey]uint64), max: defaultCacheEntries}
}

// Mode is the paging mode the Translator walks.
func (t *Translator) Mode() Mode { return t.mode }

// Reader is the physical-memory reader the Translator walks through.
func (t *Translator) Reader() physmem.Reader { return t.r }

// CR3 is the table base the Translator walks from.
func (t *Translator) CR3() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.cr3
}

// SetCR3 switches to another address space, dropping the cache if it differs.
func (t *Translator) SetCR3(cr3 uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if base := TableBase(cr3); base != t.cr3 {
		t.cr3 = base
		t.dropCache()
	}
}

// TranslateOne translates a single address.
func (t *Translator) TranslateOne(va uint64) (uint64, error) {
	res, _ := t.Translate([]uint64{va})
	return res[0].PA, res[0].Err
}

// walk is one page being translated.
type walk struct {
	page  uint64 // VA of the 4 KiB page
	table uint64 // physical base of the table the next level reads
	entry int    // index of this walk's entry in the level's batch
	pa    uint64 // physical base of the mapped page, when done
	size  uint64
	err   error
	done  bool
}

// Translate translates every address in vas. Each result has its own error;
// the returned error is nil when all succeeded, else it wraps
// physmem.ErrPartial.
func (t *Translator) Translate(vas []uint64) ([]Translation, error) {
	out := make([]Translation, len(vas))
	t.mu.RLock()
	cr3, gen := t.cr3, t.gen
	var pending []int // indexes of out still to walk
	for i, va := range vas {
		if !t.mode.Canonical(va) {
			out[i] = Translation{VA: va, Err: fmt.Errorf("paging: va %#x (%s): %w", va, t.mode, ErrNonCanonical)}
			continue
		}
		if tr, ok := t.lookup(cr3, va); ok {
			out[i] = tr
			continue
		}
		pending = append(pending, i)
	}
	t.mu.RUnlock()

	if len(pending) > 0 {
		walks, byPage := t.walkPages(cr3, vas, pending)
		t.remember(cr3, gen, walks)
		for _, i := range pending {
			va := vas[i]
			w := walks[byPage[va&^(PageSize4K-1)]]
			if w.err != nil {
				out[i] = Translation{VA: va, Err: w.err}
			} else {
				out[i] = Translation{VA: va, PA: w.pa | va&(w.size-1), PageSize: w.size}
			}
		}
	}
	failed := 0
	for i := range out {
		if out[i].Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return out, fmt.Errorf("paging: %d of %d addresses failed: %w", failed, len(out), physmem.ErrPartial)
	}
	return out, nil
}

// walkPages walks the distinct 4 KiB pages of vas[pending], level by level,
// one batch per level. byPage maps a page VA to its walk.
func (t *Translator) walkPages(cr3 uint64, vas []uint64, pending []int) ([]walk, map[uint64]int) {
	byPage := make(map[uint64]int, len(pending))
	walks := make([]walk, 0, len(pending))
	for _, i := range pending {
		page := vas[i] &^ (PageSize4K - 1)
		if _, ok := byPage[page]; !ok {
			byPage[page] = len(walks)
			walks = append(walks, walk{page: page, table: cr3})
		}
	}
	var (
		entries = make(map[uint64]int) // entry PA -> index in batch
		batch   []physmem.Range
		bufs    []byte
	)
	for _, lv := range t.mode.levels() {
		clear(entries)
		batch = batch[:0]
		for wi := range walks {
			w := &walks[wi]
			if w.done {
				continue
			}
			pa := w.table + (w.page>>lv.shift&511)*8
			k, ok := entries[pa]
			if !ok {
				k = len(batch)
				entries[pa] = k
				batch = append(batch, physmem.Range{Addr: pa})
			}
			w.entry = k
		}
		if len(batch) == 0 {
			break
		}
		if cap(bufs) < 8*len(batch) {
			bufs = make([]byte, 8*len(batch))
		}
		for k := range batch {
			batch[k].Buf = bufs[8*k : 8*k+8]
		}
		_ = t.r.ReadPhys(batch) // per-entry errors are handled below
		for wi := range walks {
			w := &walks[wi]
			if w.done {
				continue
			}
			t.step(w, lv, batch[w.entry])
		}
	}
	return walks, byPage
}

// step advances w by one level given the entry read for it.
func (t *Translator) step(w *walk, lv level, r physmem.Range) {
	if r.Err != nil {
		w.done, w.err = true, fmt.Errorf("paging: va %#x: %s entry at %#x: %w: %w", w.page, lv.name, r.Addr, ErrTableRead, r.Err)
		return
	}
	e := binary.LittleEndian.Uint64(r.Buf)
	switch {
	case e&entryPresent == 0:
		w.done, w.err = true, fmt.Errorf("paging: va %#x: %s entry %#x at %#x: %w", w.page, lv.name, e, r.Addr, ErrNotPresent)
	case lv.shift == 12 || (lv.large && e&entryLarge != 0):
		w.done, w.pa, w.size = true, e&frameMask(lv.shift), 1<<lv.shift
	default:
		w.table = e & addrMask
	}
}

// remember caches successful walks unless an invalidation happened since
// the walk read CR3 (gen).
func (t *Translator) remember(cr3, gen uint64, walks []walk) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen != gen {
		return
	}
	for _, w := range walks {
		if w.err != nil {
			continue
		}
		if len(t.cache) >= t.max {
			clear(t.cache)
		}
		t.cache[cacheKey{cr3, w.page &^ (w.size - 1), w.size}] = w.pa
	}
}
