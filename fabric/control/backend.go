package control

// Region is the slot array of one VM as the server sees it. The slices
// returned by Slot alias the region's memory: the server writes replies
// straight from them and reads written pages straight into them.
type Region interface {
	VM() string
	Slots() uint64
	// Slot returns the PageSize slice of slot i; the error wraps fabric.ErrSlotRange.
	Slot(i uint64) ([]byte, error)
	// Bytes returns the whole mapping (RDMA registers it).
	Bytes() []byte
	Free(slots ...uint64) error
	Sync() error
	Stats() Stats
}

// Backend holds the regions a server serves.
type Backend interface {
	// Region opens the region of vm, creating it with slots slots if needed.
	Region(vm string, slots uint64) (Region, error)
	// Lookup opens an existing region; the error wraps ErrNoRegion.
	Lookup(vm string) (Region, error)
}
