package physmem

// Lender is implemented by readers that can show their memory in place
// instead of copying it into the caller's buffers: a whole-memory scan then
// costs what its search costs. LendPhys calls visit for consecutive segments
// that together cover [addr, addr+n), in address order, until visit returns
// false. A segment that cannot be read carries its Err (and no Data); an
// address no memory backs fails with ErrOutOfRange. A run the reader knows
// reads as zeros (a hole, a frame never written) may come as a Zero
// segment, without Data: a scan skips it at no cost, so a visitor can lend
// a whole address space at once and pay only for the memory that is there. The returned error wraps
// ErrPartial when some segment failed.
//
// Data belongs to the reader and is valid only during the call of visit;
// visit must not keep it, change it, or call back into the reader. Memory
// read in place may change under the reader (a page moved off this host):
// the reader then finds that out after visit returned, or while it ran (a
// fault cuts visit short), and calls visit again with the segment's bytes
// as they are, Retry set. Whatever visit concluded from the segment before
// is void: a visitor keeps what it needs to forget it (it must not hold a
// lock across a call that may be cut short).
type Lender interface {
	Reader
	LendPhys(addr, n uint64, visit func(Segment) bool) error
}

// Segment is a piece of physical memory lent to a visitor.
type Segment struct {
	Addr uint64
	Len  uint64 // len(Data), or the length that failed
	Data []byte // nil when Err or Zero is set
	Err  error
	// Zero says the segment's Len bytes all read as zeros.
	Zero bool
	// Retry replaces the segment visited just before, which began at the
	// same address.
	Retry bool
}
