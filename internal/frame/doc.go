// Package frame is the framing the in-guest agent (kvmhost/agent) and the
// runtime socket (kvmhost/vmsock) share: a 12-byte header, then Len
// payload bytes, then, for a protocol that tags its frames, a trailer of
// fixed size. Each protocol keeps its own magic, types, payload bounds and
// versions in a Spec; only the mechanism lives here.
//
//	offset size field
//	0      2    magic (the protocol's own)
//	2      1    type (1 up to the protocol's last; 0 is never one)
//	3      1    flags (reserved: zero)
//	4      4    request id
//	8      4    payload length (at most the Spec's MaxPayload)
//
// Integers are big-endian.
//
// # Contract
//
// ParseHeader accepts exactly the headers AppendHeader writes: a header it
// accepts re-encodes to the same 12 bytes, so a protocol may compute a
// tag over the re-encoded header. Read checks a payload length against the
// type's bound before it allocates anything. Every rejection wraps one of
// the sentinels below, each of which wraps fabric.ErrProtocol, and never
// panics (fuzzed). Error texts start with the Spec's Prefix and are what
// the protocols sent before they shared this package: they reach the peer
// in error frames.
//
// Versions is the version range a hello carries; the version is
// negotiated per connection, never carried in the header.
//
// frametest holds the fuzz checks every protocol framed here shares.
//
// The sub-host control protocol (internal/wire) frames differently (a
// 16-byte header with a version byte and 16-bit flags) and does not use
// this package.
package frame
