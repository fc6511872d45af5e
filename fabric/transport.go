package fabric

import "context"

// SlotIO is one entry of a Transport batch: a slot of the peer's region and
// the page-sized buffer it is read into or written from. Err is set by the
// Transport for this entry alone.
type SlotIO struct {
	Slot uint64
	Buf  []byte
	Err  error
}

// Transport moves pages between the main host and one sub-host region.
//
// A batch is issued with every entry outstanding at once. Buffers are filled
// (or sent) in place. An entry that cannot be served (slot out of range, bad
// buffer length) gets its own Err and does not sink the rest of the batch.
// The returned error is nil when every entry succeeded; otherwise it wraps
// ErrPartial when only some entries failed, or the cause (ErrPeer,
// context errors, ErrClosed) when the whole batch failed, in which case every
// entry's Err is set too. Implementations are safe for concurrent use.
type Transport interface {
	// ReadSlots fills each entry's Buf with the content of its slot.
	ReadSlots(ctx context.Context, batch []SlotIO) error
	// WriteSlots stores each entry's Buf into its slot.
	WriteSlots(ctx context.Context, batch []SlotIO) error
	// Slots is the number of slots of the region this Transport serves.
	Slots() uint64
	// Kind names the mechanism, such as "tcp" or "rdma".
	Kind() string
	// Close releases the Transport; batches in flight fail with ErrClosed.
	Close() error
}
