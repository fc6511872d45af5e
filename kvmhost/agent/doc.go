// Package agent is self paging through the VM itself: vmemtrans-agent runs
// inside the guest and, on request, reads the given guest-physical pages
// through the guest kernel's own direct map (/proc/kcore), so the VMM's own
// fault path pages them in; the IDS on the main host asks it through a
// Client, which is a fabric.Exchanger.
//
// # Trust
//
// The agent is a guest program: the IDS never trusts it. Its answers only
// say which frames it touched; fabric.Memory re-checks each frame's
// location word after the answer and reads by proxy paging any frame that
// is still remote (see fabric.ExchangeAuditor). The Client stops asking an
// agent that is silent (no answer within ClientConfig.Timeout), slow
// (answers slower than ClientConfig.SlowAfter, SlowStrikes times running)
// or lying (most frames it called done were not moved, LieStrikes batches
// running): it reports that once (a zerolog warning), answers every later
// request at once with ErrAgentDown (so reads fall back to proxy paging
// without waiting), and tries the agent again after RetryAfter.
//
// # Authentication
//
// Both ends hold a pre-shared key K (at least MinKeySize bytes). The
// handshake, with fresh 32-byte nonces Nc (client) and Ns (server):
//
//	C->S hello      u16 min version, u16 max version, Nc
//	S->C challenge  u16 version, u32 max GFNs per request, Ns,
//	                HMAC-SHA256(K, "vmemtrans-agent server" | version | Nc | Ns)
//	C->S auth       HMAC-SHA256(K, "vmemtrans-agent client" | version | Nc | Ns)
//	S->C welcome    (empty), or an error frame (code auth) for a wrong key
//
// The client checks the server's proof before it proves itself, so a
// process without the key can neither pass as the agent nor use it. After
// the welcome, every frame is followed by a 32-byte tag:
// HMAC-SHA256(S, direction | u64 sequence | header | payload), where
// S = HMAC-SHA256(K, "vmemtrans-agent session" | Nc | Ns) is this
// connection's key and each direction counts its frames from zero. A frame
// recorded on one connection fails on any other (other nonces, other S)
// and on its own (other sequence number). A wrong key gets an error frame
// (code auth) and the connection is closed.
//
// # Frames
//
// A 12-byte header, Len payload bytes, then the tag once authenticated.
// Integers are big-endian.
//
//	offset size field
//	0      2    magic "VA"
//	2      1    type
//	3      1    flags (zero in version 1)
//	4      4    request id (echoed by the reply)
//	8      4    payload length (at most the type's bound, MaxPayload overall)
//
// The header codec is internal/frame, shared with the runtime socket
// (kvmhost/vmsock); the magic, the types and their bounds are this
// package's.
//
// Requests and replies after the handshake:
//
//	5 error    S->C  u8 code, u16 n, n bytes of text (n <= 256); with id 0
//	                 (or, in the handshake, the refused frame's id) it ends
//	                 the connection, else it fails that request
//	6 touch    C->S  u32 n (<= MaxGFNsPerRequest), n x u64 GFN; n = 0 is
//	                 a ping
//	7 results  S->C  u32 n, n x u8 reason (0 done; see Reason)
//
// # Limits
//
// Every length is checked against its type's bound before anything is
// allocated. A malformed, unexpected or unauthenticated frame ends only
// that connection (with an error frame saying why when the server can
// still send one). Handshake, each frame, each reply write and each touch
// request are bounded in time on the server. The server answers requests
// of one connection in order; each connection has its own goroutine.
//
// # Pages
//
// The server touches pages through a PageToucher. The real one, Kcore,
// parses /proc/kcore's ELF program headers: a RAM segment (PT_LOAD with a
// physical address, in the direct map) maps guest-physical [p_paddr,
// p_paddr+p_memsz) to file offsets from p_offset, and reading a word there
// makes the guest kernel load the page. A GFN in no RAM segment fails with
// ReasonNotRAM.
//
// # Transports
//
// Any net.Conn carries the protocol: AF_VSOCK inside a guest (ListenVsock),
// a virtio-serial port (ServeSerial: one long-lived stream, reopened when
// the host side hangs up or a session ends; /dev/virtio-ports/NAME is
// found through sysfs where no udev made the link), and unix sockets (QEMU's
// chardev for that port, on the host side; tests). Dial takes "unix:PATH"
// or "vsock:CID:PORT". Because a serial stream outlives sessions, the
// handshake resynchronises: the client numbers its hello and auth frames
// from its nonce, the agent's challenge, welcome and refusals echo the id
// of the frame they answer, and the client skips (a bounded number of)
// frames with other ids, left over from an earlier session.
package agent
