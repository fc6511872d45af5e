package kvmhost

// slotAlloc hands out the free slots of one sub-host region. The main host
// owns allocation: a slot holding a page is never handed out again until
// the page has left it (paged in) and the location word no longer names it.
type slotAlloc struct {
	free []uint64 // stack of free slots
}

func newSlotAlloc(n uint64) *slotAlloc {
	a := &slotAlloc{free: make([]uint64, n)}
	for i := range a.free {
		a.free[i] = n - 1 - uint64(i) // pop yields 0, 1, 2, ...
	}
	return a
}

func (a *slotAlloc) get() (uint64, bool) {
	if len(a.free) == 0 {
		return 0, false
	}
	s := a.free[len(a.free)-1]
	a.free = a.free[:len(a.free)-1]
	return s, true
}

func (a *slotAlloc) put(s uint64) { a.free = append(a.free, s) }

func (a *slotAlloc) available() int { return len(a.free) }
