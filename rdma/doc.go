// Package rdma is the one-sided RDMA transport of the memory fabric and the
// discovery of RDMA devices.
//
// Discovery (Discover, Choose) is pure Go and always built: it lists devices
// with github.com/Mellanox/rdmamap and reads ports, state, MTU and RoCE v2
// GIDs from sysfs, and decides which transport a sub-host would offer.
//
// The verbs binding is a thin cgo layer over libibverbs, built only with
// `-tags rdma` on linux with cgo. Every other build gets stubs that fail with
// an error wrapping fabric.ErrNoRDMA, so `CGO_ENABLED=0 go build ./...` always
// works.
//
// Sub-host side (Responder): one protection domain and one memory region per
// VM region (REMOTE_READ|REMOTE_WRITE|LOCAL_WRITE), registered once. For every
// client that passed control-protocol authentication, Accept creates RC queue
// pairs connected to the client's and returns the parameters the control
// connection carries back; closing the returned Conn (when the control
// connection ends) destroys those queue pairs. After setup the sub-host CPU
// does no per-page work: the NIC (or the rxe kernel driver) serves READs and
// WRITEs.
//
// Main-host side (Transport, a fabric.Transport): several RC queue pairs
// ("lanes"), each with its own completion queue and a registered, mmapped
// staging area of one page per outstanding request. A batch is bounds-checked
// client-side, split into chains of at most the lane depth (≤ max_rd_atomic),
// and each chain is posted with one ibv_post_send with only its last work
// request signalled; completions are reaped in batches with plain
// ibv_poll_cq. Several lanes give depth beyond max_rd_atomic.
//
// Buffer choice: caller buffers live on the Go heap, which must never be
// registered. A Transport therefore reads into its staging area and copies
// each page once into the caller's buffer (writes copy once the other way).
// Callers that want no copy at all take buffers from Transport.Alloc: those
// pages are mmapped and registered, and entries whose Buf lies in them are
// transferred in place.
//
// Once posted, a chain always runs to completion (bounded by the RC retry
// timeout) before its entries are returned: a cancelled context stops further
// posting, never leaves the NIC writing into memory the caller got back. A
// work completion error (remote access error, retry exceeded) fails the
// chain's entries with ErrPeer or fabric.ErrSlotRange and retires that lane.
// Options.ChainTimeout bounds the wait where the RC retry timer does not end
// it (rxe towards a destroyed queue pair): the lane's queue pair is moved to
// the error state, its entries fail with ErrPeer and the lane is retired.
package rdma
