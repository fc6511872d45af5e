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
