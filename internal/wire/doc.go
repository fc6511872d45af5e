// Package wire is the codec of the VMemTrans control protocol (described in
// fabric/control): the frame header and message types, the payload of every
// message, status and error codes and the errors they carry, the
// authentication response, RDMA queue-pair parameters, and the vectored
// socket read that fills pages in place. It holds no connection state:
// fabric/control (client and server) and tcpfallback (the pipelined TCP
// transport, a second client of the protocol) build on it.
//
// Every decoder takes bytes from the peer: it either accepts them and
// re-encodes to the same bytes, or rejects them with fabric.ErrProtocol, and
// never panics (fuzzed).
package wire
