package frame

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// HeaderSize is the size of a frame header on the wire.
const HeaderSize = 12

// Why a header or frame was rejected. Each reads as fabric.ErrProtocol and
// wraps it: callers tell protocol errors by fabric.ErrProtocol, and the
// text a peer receives in an error frame stays what it was.
var (
	ErrShort   error = &reason{"short header"}
	ErrMagic   error = &reason{"bad magic"}
	ErrType    error = &reason{"unknown type"}
	ErrFlags   error = &reason{"reserved flags"}
	ErrTooLong error = &reason{"payload over bound"}
)

// reason's field keeps the sentinels apart: pointers to zero-size values
// may be equal.
type reason struct{ what string }

func (r *reason) Error() string { return fabric.ErrProtocol.Error() }
func (r *reason) Unwrap() error { return fabric.ErrProtocol }

// Header is the fixed part of every frame.
type Header[T ~uint8] struct {
	Type  T
	Flags uint8  // reserved, zero in version 1
	ID    uint32 // request id, echoed by the reply
	Len   uint32 // payload length
}

// Spec is one protocol's framing.
type Spec[T ~uint8] struct {
	Magic [2]byte
	// Prefix starts every error text ("agent " or "").
	Prefix string
	// Names holds the name of each type by its number; the types are 1 to
	// len(Names)-1.
	Names      []string
	MaxPayload uint32
}

// Name is the name of type t, or type(N) for a number that is no type.
func (s *Spec[T]) Name(t T) string {
	if t > 0 && int(t) < len(s.Names) {
		return s.Names[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// AppendHeader appends the wire form of h to b.
func (s *Spec[T]) AppendHeader(b []byte, h Header[T]) []byte {
	b = append(b, s.Magic[0], s.Magic[1], byte(h.Type), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.ID)
	return binary.BigEndian.AppendUint32(b, h.Len)
}

// ParseHeader decodes and validates a frame header.
func (s *Spec[T]) ParseHeader(b []byte) (Header[T], error) {
	if len(b) < HeaderSize {
		return Header[T]{}, fmt.Errorf("%sframe header: %d bytes: %w", s.Prefix, len(b), ErrShort)
	}
	if b[0] != s.Magic[0] || b[1] != s.Magic[1] {
		return Header[T]{}, fmt.Errorf("%sframe header: bad magic %#02x%02x: %w", s.Prefix, b[0], b[1], ErrMagic)
	}
	h := Header[T]{Type: T(b[2]), Flags: b[3], ID: binary.BigEndian.Uint32(b[4:]), Len: binary.BigEndian.Uint32(b[8:])}
	switch {
	case h.Type == 0 || int(h.Type) >= len(s.Names):
		return Header[T]{}, fmt.Errorf("%sframe header: unknown %s: %w", s.Prefix, s.Name(h.Type), ErrType)
	case h.Flags != 0:
		return Header[T]{}, fmt.Errorf("%sframe header: reserved flags %#x: %w", s.Prefix, h.Flags, ErrFlags)
	case h.Len > s.MaxPayload:
		return Header[T]{}, fmt.Errorf("%sframe header: payload %d over %d: %w", s.Prefix, h.Len, s.MaxPayload, ErrTooLong)
	}
	return h, nil
}

// AppendFrame appends a whole frame, header and payload, to b.
func (s *Spec[T]) AppendFrame(b []byte, t T, id uint32, payload []byte) []byte {
	b = s.AppendHeader(b, Header[T]{Type: t, ID: id, Len: uint32(len(payload))})
	return append(b, payload...)
}

// Read reads one frame: the header, then its payload and trailer more
// bytes (a tag) in one slice, payload first. limit(type) bounds the
// payload before anything is allocated; buf is reused when large enough.
// A stream that ends between frames gives io.EOF, one that ends inside a
// payload io.ErrUnexpectedEOF.
func (s *Spec[T]) Read(r io.Reader, limit func(T) uint32, trailer int, buf []byte) (Header[T], []byte, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Header[T]{}, nil, err
	}
	h, err := s.ParseHeader(hb[:])
	if err != nil {
		return h, nil, err
	}
	if l := limit(h.Type); h.Len > l {
		return h, nil, fmt.Errorf("%s%s frame: payload %d over %d: %w", s.Prefix, s.Name(h.Type), h.Len, l, ErrTooLong)
	}
	n := int(h.Len) + trailer
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	p := buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, p, nil
}

// Versions is the range of protocol versions one end speaks.
type Versions struct{ Min, Max uint16 }

// Valid reports whether v is a range a peer may offer: not empty, and
// from version 1 on.
func (v Versions) Valid() bool { return v.Min != 0 && v.Min <= v.Max }

// Negotiate picks the highest version both v, the client's range, and
// ours speak. A refusal names both ranges and self, what this end is
// called ("agent", "runtime"), and wraps errNone, the protocol's sentinel
// for it.
func (v Versions) Negotiate(ours Versions, self string, errNone error) (uint16, error) {
	p := min(v.Max, ours.Max)
	if p < v.Min || p < ours.Min {
		return 0, fmt.Errorf("client speaks versions %d..%d, %s %d..%d: %w", v.Min, v.Max, self, ours.Min, ours.Max, errNone)
	}
	return p, nil
}
