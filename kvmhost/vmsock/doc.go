// Package vmsock is the split-memory runtime's unix control socket: how an
// IDS process on the main host gets at one VM.
//
// # Contract
//
// The runtime listens on a unix stream socket (Listen: mode 0600, bound
// under a temporary name and renamed into place, removed on Close). A
// Server serves one Backend, which *kvmhost.Runtime (with the VM's info)
// satisfies. Every accepted connection is checked with SO_PEERCRED before
// any frame is read: only the runtime's own effective uid and root are
// served; any other user receives an error frame (code forbidden, saying
// which uid to run as) and the connection is closed. A served client gets,
// for this VM only:
//
//   - VMInfo: the VM id, the guest-physical layout (backed ranges, holes
//     excluded), CR3 and CR4 of the boot CPU from the image, the RAM memfd
//     size, and the sub-hosts with this VM's credentials (id, address,
//     region VM id, pre-shared key);
//   - the RAM memfd and the location map memfd, both opened O_RDONLY,
//     passed with SCM_RIGHTS (the client cannot map them writable);
//   - self paging: "make these GFNs resident", answered per GFN with done
//     or failed and an error (code and text).
//
// Client is the IDS side; it satisfies fabric.Exchanger through
// MakeResident and is safe for concurrent use (requests are pipelined and
// matched to replies by id).
//
// # Frames
//
// Both directions carry frames: a 12-byte header, then Len payload bytes.
// All integers are big-endian.
//
//	offset size field
//	0      2    magic "VS"
//	2      1    type
//	3      1    flags (zero in version 1)
//	4      4    request id (echoed by the reply)
//	8      4    payload length (at most MaxPayload, and the type's own bound)
//
// The header codec is internal/frame, shared with the in-guest agent
// (kvmhost/agent); the magic, the types and their bounds are this
// package's.
//
// Payloads (C->S requests, S->C replies):
//
//	1 hello          C->S  u16 min version, u16 max version
//	2 welcome        S->C  u16 chosen version, u32 max GFNs per request
//	3 error          S->C  u8 code, u16 n, n bytes of text (n <= 512)
//	4 get-info       C->S  empty
//	5 info           S->C  u16 n, vm id; u64 ram size, cr3, cr4;
//	                       u32 ranges, {u64 start, u64 end}...;
//	                       u16 sub-hosts, {u8 id, u16+addr, u16+vm, u16+key}...
//	6 get-fds        C->S  empty
//	7 fds            S->C  u8 count (2); RAM then location map ride as SCM_RIGHTS
//	8 make-resident  C->S  u32 n (<= MaxGFNsPerRequest), n x u64 GFN
//	9 results        S->C  u32 n, then per GFN: u8 code (0 done), and if
//	                       failed u16 m, m bytes of text (m <= 256)
//	10 get-stats     C->S  empty (version 2 on)
//	11 stats         S->C  u16 n (<= 256), {u8 m (1..64), m bytes of name,
//	                       u64 value}...: the runtime's counters
//
// Version 2 adds only get-stats; a version-1 peer never sees it (the
// client sends it only when version 2 was chosen; a server refuses it in a
// version-1 connection as a protocol error).
//
// The first frame of a connection must be hello; the server answers with
// welcome (the highest common version) or an error. An error frame with
// the id of a request fails that request only; an error frame with id 0
// ends the connection and says why (refused peer, no common version,
// malformed frame, a frame not completed within FrameTimeout). Error codes
// map to the fabric sentinels (Code, RemoteError), so errors.Is works
// across the socket.
//
// # Limits
//
// Every length is checked against its type's bound before anything is
// allocated; a malformed or unexpected frame closes only that client's
// connection. Handshake, each frame, each reply write and each
// make-resident request are bounded in time; at most MaxInflight
// make-resident requests per connection are in the backend at once (more
// wait, which throttles the client). An interrupted recvmsg is retried.
package vmsock
