package agent

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/frame"
)

// Protocol versions this package speaks.
const (
	VersionMin = 1
	VersionMax = 1
)

// HeaderSize is the size of a frame header on the wire.
const HeaderSize = frame.HeaderSize

// MaxGFNsPerRequest bounds the GFN list of one touch request; the client
// splits longer lists.
const MaxGFNsPerRequest = 4096

// Payload bounds, checked before anything is allocated.
const (
	helloSize     = 4 + NonceSize
	challengeSize = 6 + NonceSize + TagSize
	authSize      = TagSize
	maxErrorText  = 256
	maxErrorSize  = 3 + maxErrorText
	maxTouchSize  = 4 + 8*MaxGFNsPerRequest
	maxResultSize = 4 + MaxGFNsPerRequest
	// MaxPayload bounds every frame payload.
	MaxPayload = maxTouchSize
)

// Type is a frame type.
type Type uint8

// Frame types; see the package doc.
const (
	TypeHello     Type = 1 // C->S: versions, client nonce
	TypeChallenge Type = 2 // S->C: version, max GFNs, server nonce, server proof
	TypeAuth      Type = 3 // C->S: client proof
	TypeWelcome   Type = 4 // S->C: empty; tags start after it
	TypeError     Type = 5 // S->C: code, text
	TypeTouch     Type = 6 // C->S: GFN list
	TypeResults   Type = 7 // S->C: one reason per GFN
)

// spec is the agent's framing; the names say which types exist.
var spec = frame.Spec[Type]{
	Magic:  [2]byte{'V', 'A'},
	Prefix: "agent ",
	Names: []string{
		TypeHello: "hello", TypeChallenge: "challenge", TypeAuth: "auth", TypeWelcome: "welcome",
		TypeError: "error", TypeTouch: "touch", TypeResults: "results",
	},
	MaxPayload: MaxPayload,
}

func (t Type) String() string { return spec.Name(t) }

// request reports whether clients send frames of type t.
func (t Type) request() bool { return t == TypeHello || t == TypeAuth || t == TypeTouch }

// requestLimit is the largest payload a server accepts for type t.
func requestLimit(t Type) uint32 {
	switch t {
	case TypeHello:
		return helloSize
	case TypeAuth:
		return authSize
	case TypeTouch:
		return maxTouchSize
	}
	return 0
}

// replyLimit is the largest payload a client accepts for type t.
func replyLimit(t Type) uint32 {
	switch t {
	case TypeChallenge:
		return challengeSize
	case TypeWelcome:
		return 0
	case TypeError:
		return maxErrorSize
	case TypeResults:
		return maxResultSize
	}
	return 0
}

// Header is the fixed part of every frame.
type Header = frame.Header[Type]

// AppendHeader appends the wire form of h to b.
func AppendHeader(b []byte, h Header) []byte { return spec.AppendHeader(b, h) }

// ParseHeader decodes and validates a frame header.
func ParseHeader(b []byte) (Header, error) { return spec.ParseHeader(b) }

// readFrame reads one frame whose payload limit(type) bounds before any
// allocation, and checks its tag when t is keyed; buf is reused when large
// enough.
func readFrame(r io.Reader, limit func(Type) uint32, t *tagger, buf []byte) (Header, []byte, error) {
	trailer := 0
	if t.keyed() {
		trailer = TagSize
	}
	h, p, err := spec.Read(r, limit, trailer, buf)
	if err != nil || !t.keyed() {
		return h, p, err
	}
	// The header is re-encoded, not kept: ParseHeader accepts only the
	// bytes AppendHeader writes.
	var hb [HeaderSize]byte
	if err := t.open(spec.AppendHeader(hb[:0], h), p[:h.Len], p[h.Len:]); err != nil {
		return h, nil, fmt.Errorf("agent %v frame: %w", h.Type, err)
	}
	return h, p[:h.Len], nil
}

// appendFrame appends a whole frame (header, payload, and the tag when t
// is keyed) to b.
func appendFrame(b []byte, t *tagger, typ Type, id uint32, payload []byte) []byte {
	start := len(b)
	b = spec.AppendFrame(b, typ, id, payload)
	if t.keyed() {
		b = t.seal(b, b[start:start+HeaderSize], b[start+HeaderSize:])
	}
	return b
}

// Hello is the client's opening frame.
type Hello struct {
	Min, Max uint16
	Nonce    Nonce
}

// AppendHello appends the payload of h.
func AppendHello(b []byte, h Hello) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Min)
	b = binary.BigEndian.AppendUint16(b, h.Max)
	return append(b, h.Nonce[:]...)
}

// ParseHello decodes a hello payload.
func ParseHello(p []byte) (Hello, error) {
	if len(p) != helloSize {
		return Hello{}, fmt.Errorf("agent hello: %d bytes, want %d: %w", len(p), helloSize, fabric.ErrProtocol)
	}
	h := Hello{Min: binary.BigEndian.Uint16(p), Max: binary.BigEndian.Uint16(p[2:])}
	copy(h.Nonce[:], p[4:])
	if !(frame.Versions{Min: h.Min, Max: h.Max}).Valid() {
		return Hello{}, fmt.Errorf("agent hello: versions %d..%d: %w", h.Min, h.Max, fabric.ErrProtocol)
	}
	return h, nil
}

// negotiate picks the highest version both h and this package speak.
func negotiate(h Hello) (uint16, error) {
	return frame.Versions{Min: h.Min, Max: h.Max}.Negotiate(frame.Versions{Min: VersionMin, Max: VersionMax}, "agent", ErrVersion)
}

// Challenge is the server's answer to hello.
type Challenge struct {
	Version uint16
	MaxGFNs uint32
	Nonce   Nonce
	Proof   Tag
}

// AppendChallenge appends the payload of c.
func AppendChallenge(b []byte, c Challenge) []byte {
	b = binary.BigEndian.AppendUint16(b, c.Version)
	b = binary.BigEndian.AppendUint32(b, c.MaxGFNs)
	b = append(b, c.Nonce[:]...)
	return append(b, c.Proof[:]...)
}

// ParseChallenge decodes a challenge payload.
func ParseChallenge(p []byte) (Challenge, error) {
	if len(p) != challengeSize {
		return Challenge{}, fmt.Errorf("agent challenge: %d bytes, want %d: %w", len(p), challengeSize, fabric.ErrProtocol)
	}
	c := Challenge{Version: binary.BigEndian.Uint16(p), MaxGFNs: binary.BigEndian.Uint32(p[2:])}
	copy(c.Nonce[:], p[6:])
	copy(c.Proof[:], p[6+NonceSize:])
	if c.Version == 0 || c.MaxGFNs == 0 || c.MaxGFNs > MaxGFNsPerRequest {
		return Challenge{}, fmt.Errorf("agent challenge: version %d, %d gfns per request: %w", c.Version, c.MaxGFNs, fabric.ErrProtocol)
	}
	return c, nil
}

// ParseAuth decodes an auth payload: the client's proof.
func ParseAuth(p []byte) (Tag, error) {
	var t Tag
	if len(p) != authSize {
		return t, fmt.Errorf("agent auth: %d bytes, want %d: %w", len(p), authSize, fabric.ErrProtocol)
	}
	copy(t[:], p)
	return t, nil
}

// AppendError appends an error frame payload for err.
func AppendError(b []byte, err error) []byte {
	msg := err.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	b = append(b, byte(CodeOf(err)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// ParseError decodes an error frame payload.
func ParseError(p []byte) (*RemoteError, error) {
	if len(p) < 3 {
		return nil, fmt.Errorf("agent error frame: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	c, n := Code(p[0]), int(binary.BigEndian.Uint16(p[1:]))
	switch {
	case c == 0:
		return nil, fmt.Errorf("agent error frame: code 0: %w", fabric.ErrProtocol)
	case n > maxErrorText || len(p) != 3+n:
		return nil, fmt.Errorf("agent error frame: text of %d bytes in %d: %w", n, len(p), fabric.ErrProtocol)
	}
	return &RemoteError{Code: c, Msg: string(p[3:])}, nil
}

// AppendGFNs appends a touch payload.
func AppendGFNs(b []byte, gfns []fabric.GFN) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(gfns)))
	for _, g := range gfns {
		b = binary.BigEndian.AppendUint64(b, uint64(g))
	}
	return b
}

// ParseGFNs decodes a touch payload into dst (reused when large enough).
func ParseGFNs(dst []fabric.GFN, p []byte) ([]fabric.GFN, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("agent touch: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxGFNsPerRequest || uint64(len(p)-4) != uint64(n)*8 {
		return nil, fmt.Errorf("agent touch: %d gfns in %d bytes (at most %d): %w", n, len(p), MaxGFNsPerRequest, fabric.ErrProtocol)
	}
	dst = dst[:0]
	for i := range int(n) {
		dst = append(dst, fabric.GFN(binary.BigEndian.Uint64(p[4+8*i:])))
	}
	return dst, nil
}

// AppendResults appends a results payload.
func AppendResults(b []byte, rs []Reason) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(rs)))
	for _, r := range rs {
		b = append(b, byte(r))
	}
	return b
}

// ParseResults decodes a results payload. Reasons this version does not
// know are kept (they read as failures).
func ParseResults(p []byte) ([]Reason, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("agent results: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxGFNsPerRequest || uint64(len(p)-4) != uint64(n) {
		return nil, fmt.Errorf("agent results: %d entries in %d bytes: %w", n, len(p), fabric.ErrProtocol)
	}
	rs := make([]Reason, n)
	for i := range rs {
		rs[i] = Reason(p[4+i])
	}
	return rs, nil
}
