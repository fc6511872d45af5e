package control

import "github.com/vmemtrans/vmemtrans/internal/wire"

// The protocol's values a client or a server sees, defined with the wire
// codec (internal/wire) and named here so the API reads on its own.
type (
	// Stats is a region's size and disk use (Client.Stats, Region.Stats).
	Stats = wire.Stats
	// RDMAParams is one side's RDMA connection parameters: its queue pairs
	// and, from the sub-host, the region they may READ and WRITE.
	RDMAParams = wire.RDMAParams
	// QP names one end of a reliable-connected queue pair.
	QP = wire.QP
	// RemoteError is a request the sub-host refused; it unwraps to the
	// sentinel of its code (fabric.ErrSlotRange, ErrNoRegion, ...).
	RemoteError = wire.RemoteError
)

// Errors a sub-host reports, beside fabric's sentinels.
var (
	ErrNoRegion = wire.ErrNoRegion // the VM has no region (open with a size to create one)
	ErrNotOpen  = wire.ErrNotOpen  // a request before the region was opened
	ErrRegion   = wire.ErrRegion   // the region exists but cannot be served
	ErrServer   = wire.ErrServer   // any other sub-host failure
)

// MaxSlotsPerRequest bounds the slots of one read, write or free request.
const MaxSlotsPerRequest = wire.MaxSlotsPerRequest
