// Package tcpfallback is the fabric.Transport over TCP, for hosts without
// RDMA and for CI.
//
// A Transport is one authenticated control connection (fabric/control) to a
// sub-host, bound to one VM's region. Batches are split into requests of at
// most Options.MaxBatch slot indices; up to Options.InFlight requests are
// outstanding at once on the connection (pipelined by request id, shared by
// all concurrent callers). A single reader goroutine reads every reply
// straight into the callers' buffers with vectored reads, with no
// intermediate copy; per-slot status bytes give per-entry errors.
//
// Failure is never a hang: a context ends the wait of its own call (a reply
// that arrives later is discarded, never written into the caller's
// buffers), and a peer that dies, hangs up, or stays silent for
// Options.Timeout while requests are pending fails every pending and later
// call with an error wrapping fabric.ErrPeer that names the peer address.
// Close fails calls in flight with fabric.ErrClosed.
package tcpfallback
