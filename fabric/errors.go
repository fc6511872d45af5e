package fabric

import "errors"

// Sentinel errors shared by every fabric component; wrap them with %w.
var (
	// ErrPartial reports a batch in which some entries failed; see each entry's Err.
	ErrPartial = errors.New("some batch entries failed")
	// ErrSlotRange reports a slot outside the region.
	ErrSlotRange = errors.New("slot out of range")
	// ErrBufferSize reports an entry whose buffer is not exactly one page.
	ErrBufferSize = errors.New("buffer is not one page")
	// ErrPeer reports a sub-host that died, hung up or timed out.
	ErrPeer = errors.New("peer unavailable")
	// ErrClosed reports use of a closed Transport or connection.
	ErrClosed = errors.New("closed")
	// ErrAuth reports a failed authentication (wrong key, bad proof, replay).
	ErrAuth = errors.New("authentication failed")
	// ErrForbidden reports a request for a VM the client is not authorised for.
	ErrForbidden = errors.New("not authorised for this vm")
	// ErrProtocol reports a malformed or unexpected frame.
	ErrProtocol = errors.New("protocol violation")
	// ErrNoRDMA reports that RDMA is not available in this build or on this host.
	ErrNoRDMA = errors.New("rdma not available")
)

// Sentinel errors of the location map and the read protocol.
var (
	// ErrBadLocation reports a location word or field that is not valid.
	ErrBadLocation = errors.New("invalid location")
	// ErrGFNRange reports a GFN beyond the end of the location map.
	ErrGFNRange = errors.New("gfn outside the location map")
	// ErrUnstable reports a page whose location kept changing through every retry of a read.
	ErrUnstable = errors.New("location kept changing during read")
)
