// Package control is the VMemTrans control protocol and the sub-host server.
//
// The protocol runs over TCP (optionally TLS) as length-prefixed binary
// frames: a 16-byte header (magic "VM", version, type, flags, request id,
// payload length) followed by a bounded payload. The first exchange of
// every connection is mutual pre-shared-key authentication, before any other
// frame is accepted:
//
//	server -> client  Challenge{server nonce}
//	client -> server  Response{vm, client nonce, HMAC(key, label || vm || sn || cn)}
//	server -> client  Proof{HMAC(key, label || vm || cn || sn)}
//
// with label "vmemtrans-auth-v1", 32-byte nonces fresh per connection, and
// the key chosen per VM from a Keyring. No key crosses the wire; a recorded
// exchange cannot be replayed against a new nonce. An authenticated client
// is authorised for exactly the VM it proved a key for and can open only that
// VM's region.
//
// After authentication a client opens (or creates) its region, then issues
// pipelined requests identified by request id: read and write of slot-index
// vectors, free, sync, stats, close, the RDMA queue-pair exchange (served by
// a pluggable RDMAResponder) and two baseline operations used by benchmarks
// (a bare byte stream and a bare ping-pong on the same connection).
// Read replies carry one status byte per requested slot followed by the
// pages of the slots that succeeded, so one bad index never sinks a batch.
//
// Errors travel as Error frames whose code maps back to the fabric sentinel
// errors. A malformed frame closes that connection (with a logged reason)
// and never disturbs other clients.
//
// The Server answers each read with one vectored write straight from the
// mapped region and reads written pages straight from the socket into their
// slots. It serves any Backend; StoreBackend adapts a fabric/store.Store.
//
// The frame and message codec is internal/wire, shared with tcpfallback (a
// second client of the same protocol); this package is the client, the server
// and their options.
package control
