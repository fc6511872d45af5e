package fabric

import (
	"sync"
	"time"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

var _ physmem.Sparse = (*Memory)(nil)

const (
	// contentWindow is how many frames one content snapshot covers.
	contentWindow = 16384
	// contentFresh is how long NextData reuses a snapshot: the calls of
	// one scan come in quick succession, and a later scan must see frames
	// written since.
	contentFresh = 50 * time.Millisecond
)

// contentSnapshot says, for a window of frames, which were never written
// (a hole of guest RAM under a local word that held still around the
// residency query). Once a frame has content it keeps it: the runtime
// punches a page only after publishing its remote word. So an older
// snapshot errs only on frames written since it was taken, which a scan
// running then treats as concurrent writes.
type contentSnapshot struct {
	mu    sync.Mutex
	base  GFN
	taken time.Time
	empty []bool
	vec   []byte
	words []Word
}

// NextData implements physmem.Sparse: the first extent at or after addr of
// frames that hold content, in guest RAM here or on a sub-host. Layout
// holes are not guest memory, and a frame never written reads as zeros,
// so a scan skips both. Where the local view is not available (pread),
// every frame of the layout counts as content.
func (m *Memory) NextData(addr uint64) (start, end uint64, ok bool) {
	for _, r := range m.layout {
		if r.End <= addr {
			continue
		}
		pos := max(addr, r.Start)
		s, found := m.findContent(pos, r.End, true)
		if !found {
			continue
		}
		e, _ := m.findContent(s, r.End, false)
		return max(addr, s), e, true
	}
	return 0, 0, false
}

// findContent is the address of the first frame in [pos, end) whose
// having content is want (pos itself when its frame qualifies), or end.
func (m *Memory) findContent(pos, end uint64, want bool) (uint64, bool) {
	c := &m.content
	c.mu.Lock()
	defer c.mu.Unlock()
	for g, last := GFNOf(pos), GFNOf(end-1); g <= last; {
		if !m.snapshot(g, last) {
			return pos, want // no view: everything is content
		}
		for i := int(g - c.base); i < len(c.empty) && g <= last; i, g = i+1, g+1 {
			if !c.empty[i] == want {
				return max(pos, g.Addr()), true
			}
		}
	}
	return end, false
}

// snapshot makes c cover g with a fresh snapshot (up to last). c.mu is held.
func (m *Memory) snapshot(g, last GFN) bool {
	c := &m.content
	if g >= c.base && int(g-c.base) < len(c.empty) && time.Since(c.taken) < contentFresh {
		return true
	}
	n := int(min(uint64(last-g)+1, contentWindow))
	c.empty, c.vec, c.words = grow(c.empty, n), grow(c.vec, n), grow(c.words, n)
	locs := m.cfg.Locations
	for i := range n {
		c.words[i] = locs.Load(g + GFN(i))
	}
	if err := m.local.resident(g.Addr(), c.vec); err != nil {
		c.empty = c.empty[:0]
		return false
	}
	for i := range n {
		w := locs.Load(g + GFN(i))
		c.empty[i] = w == c.words[i] && w.State() == StateLocal && c.vec[i]&1 == 0
	}
	c.base, c.taken = g, time.Now()
	return true
}
