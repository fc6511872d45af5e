package kvmhost

// slotAlloc hands out the free slots of one sub-host region. The main host
// owns allocation: a slot holding a page is never handed out again until
// the page has left it (paged in) and the location word no longer names it.
//
// Slots never used are a high-water mark, not a list: a region sized for a
// large guest costs nothing per slot until slots come back (8 bytes each
// then), which keeps the runtime's overhead per page of guest RAM small.
type slotAlloc struct {
	n    uint64   // slots in the region
	next uint64   // slots from next on have never been handed out
	free []uint64 // stack of slots handed back
}

func newSlotAlloc(n uint64) *slotAlloc { return &slotAlloc{n: n} }

// get yields a slot handed back most recently, else the lowest never used
// (0, 1, 2, ... on a fresh region).
func (a *slotAlloc) get() (uint64, bool) {
	if k := len(a.free); k > 0 {
		s := a.free[k-1]
		a.free = a.free[:k-1]
		return s, true
	}
	if a.next == a.n {
		return 0, false
	}
	a.next++
	return a.next - 1, true
}

func (a *slotAlloc) put(s uint64) { a.free = append(a.free, s) }

func (a *slotAlloc) available() int { return len(a.free) + int(a.n-a.next) }
