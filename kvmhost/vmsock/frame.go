package vmsock

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/frame"
)

// Protocol versions this package speaks; the hello exchange picks the
// highest both ends support.
const (
	VersionMin = 1
	VersionMax = 2
)

// VersionStats is the first version with the get-stats request.
const VersionStats = 2

// HeaderSize is the size of a frame header on the wire.
const HeaderSize = frame.HeaderSize

// MaxGFNsPerRequest bounds the GFN list of one make-resident request; the
// client splits longer lists.
const MaxGFNsPerRequest = 4096

// Message bounds: an error frame's text and one failed GFN's text.
const (
	maxErrorText  = 512
	maxResultText = 256
)

// Payload bounds per frame type, checked before anything is allocated.
const (
	helloSize        = 4
	welcomeSize      = 6
	fdsSize          = 1
	maxErrorPayload  = 3 + maxErrorText
	maxResidentReq   = 4 + 8*MaxGFNsPerRequest
	maxResultsPaylod = 4 + MaxGFNsPerRequest*(3+maxResultText)
	// MaxPayload bounds every frame payload (the largest, a results frame
	// or an info frame, fits).
	MaxPayload = 2 << 20
)

// Type is a frame type.
type Type uint8

// Frame types. C->S frames are requests; every S->C frame echoes the id of
// the request it answers, except an error frame with id 0, which ends the
// connection.
const (
	TypeHello        Type = 1  // C->S: min, max version
	TypeWelcome      Type = 2  // S->C: chosen version, max GFNs per request
	TypeError        Type = 3  // S->C: code, message
	TypeGetInfo      Type = 4  // C->S: empty
	TypeInfo         Type = 5  // S->C: VMInfo
	TypeGetFDs       Type = 6  // C->S: empty
	TypeFDs          Type = 7  // S->C: count; the descriptors ride with the frame (SCM_RIGHTS)
	TypeMakeResident Type = 8  // C->S: GFN list
	TypeResults      Type = 9  // S->C: one result per GFN of the request
	TypeGetStats     Type = 10 // C->S: empty (version 2)
	TypeStats        Type = 11 // S->C: the runtime's counters (version 2)
)

// spec is the socket's framing; the names say which types exist.
var spec = frame.Spec[Type]{
	Magic: [2]byte{'V', 'S'},
	Names: []string{
		TypeHello: "hello", TypeWelcome: "welcome", TypeError: "error",
		TypeGetInfo: "get-info", TypeInfo: "info", TypeGetFDs: "get-fds", TypeFDs: "fds",
		TypeMakeResident: "make-resident", TypeResults: "results", TypeGetStats: "get-stats", TypeStats: "stats",
	},
	MaxPayload: MaxPayload,
}

func (t Type) String() string { return spec.Name(t) }

// request reports whether clients send frames of type t.
func (t Type) request() bool {
	return t == TypeHello || t == TypeGetInfo || t == TypeGetFDs || t == TypeMakeResident || t == TypeGetStats
}

// requestLimit is the largest payload a server accepts for request type t.
func requestLimit(t Type) uint32 {
	switch t {
	case TypeHello:
		return helloSize
	case TypeMakeResident:
		return maxResidentReq
	}
	return 0
}

// replyLimit is the largest payload a client accepts for reply type t.
func replyLimit(t Type) uint32 {
	switch t {
	case TypeWelcome:
		return welcomeSize
	case TypeError:
		return maxErrorPayload
	case TypeInfo:
		return maxInfoPayload
	case TypeFDs:
		return fdsSize
	case TypeResults:
		return maxResultsPaylod
	case TypeStats:
		return maxStatsPayload
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
// allocation; buf is reused when large enough.
func readFrame(r io.Reader, limit func(Type) uint32, buf []byte) (Header, []byte, error) {
	return spec.Read(r, limit, 0, buf)
}

// buildFrame builds a whole frame: header and payload in one buffer.
func buildFrame(t Type, id uint32, payload []byte) []byte {
	return spec.AppendFrame(make([]byte, 0, HeaderSize+len(payload)), t, id, payload)
}

// Hello is the client's opening frame: the versions it speaks.
type Hello struct{ Min, Max uint16 }

// AppendHello appends the payload of h.
func AppendHello(b []byte, h Hello) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Min)
	return binary.BigEndian.AppendUint16(b, h.Max)
}

// ParseHello decodes a hello payload.
func ParseHello(p []byte) (Hello, error) {
	if len(p) != helloSize {
		return Hello{}, fmt.Errorf("hello: %d bytes, want %d: %w", len(p), helloSize, fabric.ErrProtocol)
	}
	h := Hello{Min: binary.BigEndian.Uint16(p), Max: binary.BigEndian.Uint16(p[2:])}
	if !(frame.Versions{Min: h.Min, Max: h.Max}).Valid() {
		return Hello{}, fmt.Errorf("hello: versions %d..%d: %w", h.Min, h.Max, fabric.ErrProtocol)
	}
	return h, nil
}

// negotiate picks the highest version both h and this package speak.
func negotiate(h Hello) (uint16, error) {
	return frame.Versions{Min: h.Min, Max: h.Max}.Negotiate(frame.Versions{Min: VersionMin, Max: VersionMax}, "runtime", ErrVersion)
}

// Welcome is the server's answer to hello.
type Welcome struct {
	Version uint16
	MaxGFNs uint32 // GFNs the server accepts in one make-resident request
}

// AppendWelcome appends the payload of w.
func AppendWelcome(b []byte, w Welcome) []byte {
	b = binary.BigEndian.AppendUint16(b, w.Version)
	return binary.BigEndian.AppendUint32(b, w.MaxGFNs)
}

// ParseWelcome decodes a welcome payload.
func ParseWelcome(p []byte) (Welcome, error) {
	if len(p) != welcomeSize {
		return Welcome{}, fmt.Errorf("welcome: %d bytes, want %d: %w", len(p), welcomeSize, fabric.ErrProtocol)
	}
	w := Welcome{Version: binary.BigEndian.Uint16(p), MaxGFNs: binary.BigEndian.Uint32(p[2:])}
	if w.Version == 0 || w.MaxGFNs == 0 || w.MaxGFNs > MaxGFNsPerRequest {
		return Welcome{}, fmt.Errorf("welcome: version %d, %d gfns per request: %w", w.Version, w.MaxGFNs, fabric.ErrProtocol)
	}
	return w, nil
}

// AppendError appends an error frame payload for err.
func AppendError(b []byte, err error) []byte {
	return appendMessage(append(b, byte(CodeOf(err))), err.Error(), maxErrorText)
}

// ParseError decodes an error frame payload.
func ParseError(p []byte) (*RemoteError, error) {
	if len(p) < 1 {
		return nil, fmt.Errorf("error frame: empty: %w", fabric.ErrProtocol)
	}
	c := Code(p[0])
	msg, rest, err := parseMessage(p[1:], maxErrorText)
	switch {
	case err != nil:
		return nil, fmt.Errorf("error frame: %w", err)
	case len(rest) != 0:
		return nil, fmt.Errorf("error frame: %d trailing bytes: %w", len(rest), fabric.ErrProtocol)
	case c == CodeOK:
		return nil, fmt.Errorf("error frame: code 0: %w", fabric.ErrProtocol)
	}
	return &RemoteError{Code: c, Msg: msg}, nil
}

// appendMessage appends a length-prefixed text cut to limit bytes.
func appendMessage(b []byte, msg string, limit int) []byte {
	if len(msg) > limit {
		msg = msg[:limit]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

func parseMessage(p []byte, limit int) (string, []byte, error) {
	if len(p) < 2 {
		return "", nil, fmt.Errorf("message length: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > limit || len(p)-2 < n {
		return "", nil, fmt.Errorf("message of %d bytes (limit %d, %d left): %w", n, limit, len(p)-2, fabric.ErrProtocol)
	}
	return string(p[2 : 2+n]), p[2+n:], nil
}

// AppendGFNs appends a make-resident payload.
func AppendGFNs(b []byte, gfns []fabric.GFN) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(gfns)))
	for _, g := range gfns {
		b = binary.BigEndian.AppendUint64(b, uint64(g))
	}
	return b
}

// ParseGFNs decodes a make-resident payload into dst (reused when large enough).
func ParseGFNs(dst []fabric.GFN, p []byte) ([]fabric.GFN, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("make-resident: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxGFNsPerRequest {
		return nil, fmt.Errorf("make-resident: %d gfns over %d: %w", n, MaxGFNsPerRequest, fabric.ErrProtocol)
	}
	if uint64(len(p)-4) != uint64(n)*8 {
		return nil, fmt.Errorf("make-resident: %d gfns in %d bytes: %w", n, len(p), fabric.ErrProtocol)
	}
	dst = dst[:0]
	for i := range int(n) {
		dst = append(dst, fabric.GFN(binary.BigEndian.Uint64(p[4+8*i:])))
	}
	return dst, nil
}

// AppendResults appends a results payload: per GFN code 0 for done, else
// the code and a message.
func AppendResults(b []byte, errs []error) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(errs)))
	for _, err := range errs {
		c := CodeOf(err)
		b = append(b, byte(c))
		if c != CodeOK {
			b = appendMessage(b, err.Error(), maxResultText)
		}
	}
	return b
}

// ParseResults decodes a results payload; nil entries are done.
func ParseResults(p []byte) ([]error, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("results: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxGFNsPerRequest || uint64(n) > uint64(len(p)-4) {
		return nil, fmt.Errorf("results: %d entries in %d bytes: %w", n, len(p), fabric.ErrProtocol)
	}
	errs := make([]error, n)
	p = p[4:]
	for i := range errs {
		if len(p) < 1 {
			return nil, fmt.Errorf("results: entry %d missing: %w", i, fabric.ErrProtocol)
		}
		c := Code(p[0])
		p = p[1:]
		if c == CodeOK {
			continue
		}
		msg, rest, err := parseMessage(p, maxResultText)
		if err != nil {
			return nil, fmt.Errorf("results: entry %d: %w", i, err)
		}
		errs[i], p = &RemoteError{Code: c, Msg: msg}, rest
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("results: %d trailing bytes: %w", len(p), fabric.ErrProtocol)
	}
	return errs, nil
}

// ParseFDs decodes an fds payload: how many descriptors ride with it.
func ParseFDs(p []byte) (int, error) {
	if len(p) != fdsSize || p[0] != numFDs {
		return 0, fmt.Errorf("fds frame: payload %x, want one byte %d: %w", p, numFDs, fabric.ErrProtocol)
	}
	return numFDs, nil
}

// numFDs is how many descriptors an fds frame carries: RAM, then location map.
const numFDs = 2

// Bounds of a stats frame.
const (
	maxCounters     = 256
	maxCounterName  = 64
	maxStatsPayload = 2 + maxCounters*(1+maxCounterName+8)
)

// Counter is one of the runtime's counters, by name.
type Counter struct {
	Name  string
	Value uint64
}

// AppendStats appends a stats payload: u16 n, then n x {u8 m, m bytes of
// name, u64 value}. Counters past the bounds are left out.
func AppendStats(b []byte, cs []Counter) []byte {
	n := 0
	for _, c := range cs {
		if len(c.Name) > 0 && len(c.Name) <= maxCounterName && n < maxCounters {
			n++
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	n = 0
	for _, c := range cs {
		if len(c.Name) == 0 || len(c.Name) > maxCounterName || n == maxCounters {
			continue
		}
		n++
		b = append(b, byte(len(c.Name)))
		b = append(b, c.Name...)
		b = binary.BigEndian.AppendUint64(b, c.Value)
	}
	return b
}

// ParseStats decodes a stats payload.
func ParseStats(p []byte) ([]Counter, error) {
	d := decoder{p: p}
	n := int(d.u16())
	if n > maxCounters || n*10 > len(d.p) {
		return nil, fmt.Errorf("stats: %d counters in %d bytes: %w", n, len(p), fabric.ErrProtocol)
	}
	cs := make([]Counter, 0, n)
	for range n {
		m := int(d.u8())
		if d.err == nil && (m == 0 || m > maxCounterName) {
			return nil, fmt.Errorf("stats: counter name of %d bytes: %w", m, fabric.ErrProtocol)
		}
		name := string(d.take(m))
		cs = append(cs, Counter{Name: name, Value: d.u64()})
	}
	if d.err != nil {
		return nil, fmt.Errorf("stats: %w", d.err)
	}
	if len(d.p) != 0 {
		return nil, fmt.Errorf("stats: %d trailing bytes: %w", len(d.p), fabric.ErrProtocol)
	}
	return cs, nil
}
