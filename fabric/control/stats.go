package control

import "sync/atomic"

// ServerStats counts what a Server has done since it started. One-sided
// RDMA reads and writes never reach the server and are not counted.
type ServerStats struct {
	Connections       uint64 // connections accepted
	ActiveConnections int64  // connections open now
	AuthFailures      uint64 // connections that failed authentication
	ReadRequests      uint64 // read requests over the control connection
	ReadPages         uint64 // slots those requests asked for
	WriteRequests     uint64 // write requests
	WritePages        uint64 // pages those requests carried
	FreeRequests      uint64 // free requests
}

type serverCounters struct {
	connections, authFailures, readRequests, readPages atomic.Uint64
	writeRequests, writePages, freeRequests            atomic.Uint64
	active                                             atomic.Int64
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	c := &s.counters
	return ServerStats{
		Connections: c.connections.Load(), ActiveConnections: c.active.Load(), AuthFailures: c.authFailures.Load(),
		ReadRequests: c.readRequests.Load(), ReadPages: c.readPages.Load(),
		WriteRequests: c.writeRequests.Load(), WritePages: c.writePages.Load(),
		FreeRequests: c.freeRequests.Load(),
	}
}
