// Package tcpfallback is the fabric.Transport over TCP, for hosts without
// RDMA and for CI.
//
// A Transport is one authenticated control connection (fabric/control) to a
// sub-host, bound to one VM's region. Batches are split into requests of at
// most Options.MaxBatch slot indices; up to Options.InFlight requests are
// outstanding at once on the connection (pipelined by request id, shared by
// all concurrent callers). Writes go out as one vectored write of the
// caller's own pages.
//
// Replies are read by whichever waiting caller holds the connection's
// reading role: it reads every reply, in whatever order they come, straight
// into the buffers of the call each answers (vectored reads, no intermediate
// copy) and passes the role on once its own call is complete. A caller alone
// on the connection thus reads its own reply, with no goroutine hand-off on
// the latency path. Per-slot status bytes give per-entry errors.
//
// Failure is never a hang. A context ends its caller's wait (a reply that
// arrives later is discarded, never written into the caller's buffers);
// a caller that is reading a reply frame finishes that frame first. When
// the connection breaks, the reader fails every pending call with an error
// wrapping fabric.ErrPeer that names the peer address, and later calls fail
// the same way; a watchdog goroutine declares the peer dead when replies owed
// to a waiting caller stop for Options.Timeout (a hung peer, or one stalled
// mid-frame). Close fails calls in flight with fabric.ErrClosed.
package tcpfallback
