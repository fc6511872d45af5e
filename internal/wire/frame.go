package wire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Version is the protocol version this package speaks.
const Version = 1

// HeaderSize is the size of a frame header on the wire.
const HeaderSize = 16

// MaxSlotsPerRequest bounds the slot vector of one read, write or free request.
const MaxSlotsPerRequest = 1024

// MaxPayload bounds a frame payload: a full write request plus its slot vector.
const MaxPayload = 4 + MaxSlotsPerRequest*(8+fabric.PageSize)

const (
	magic0 = 'V'
	magic1 = 'M'
)

// Type is a frame type.
type Type uint8

// Frame types. Requests flow client to server; replies echo the request id.
const (
	TypeChallenge      Type = 1  // S->C: server nonce
	TypeResponse       Type = 2  // C->S: vm, client nonce, client MAC
	TypeProof          Type = 3  // S->C: server MAC
	TypeError          Type = 4  // S->C: code, message; fails the request it answers
	TypeOpen           Type = 5  // C->S: vm, slots (0: must exist)
	TypeOpened         Type = 6  // S->C: slots
	TypeRead           Type = 7  // C->S: slot vector
	TypeReadReply      Type = 8  // S->C: statuses, then the pages of ok slots
	TypeWrite          Type = 9  // C->S: slot vector, then one page per slot
	TypeStatuses       Type = 10 // S->C: one status per slot (write, free)
	TypeFree           Type = 11 // C->S: slot vector
	TypeStats          Type = 12 // C->S: empty
	TypeStatsReply     Type = 13 // S->C: slots, resident bytes, vm
	TypeSync           Type = 14 // C->S: empty
	TypeAck            Type = 15 // S->C: empty
	TypeClose          Type = 16 // C->S: empty; acked, then the server hangs up
	TypeRDMAConnect    Type = 17 // both ways: queue-pair parameters
	TypeRDMADisconnect Type = 18 // C->S: the server's queue pairs to tear down
	TypeBaselineStream Type = 19 // C->S: the server then writes raw bytes
	TypeBaselinePing   Type = 20 // C->S: the connection then runs raw ping-pong rounds
	typeLimit          Type = 21
)

var typeNames = [...]string{
	TypeChallenge: "challenge", TypeResponse: "response", TypeProof: "proof",
	TypeError: "error", TypeOpen: "open", TypeOpened: "opened", TypeRead: "read",
	TypeReadReply: "read-reply", TypeWrite: "write", TypeStatuses: "statuses",
	TypeFree: "free", TypeStats: "stats", TypeStatsReply: "stats-reply",
	TypeSync: "sync", TypeAck: "ack", TypeClose: "close",
	TypeRDMAConnect: "rdma-connect", TypeRDMADisconnect: "rdma-disconnect",
	TypeBaselineStream: "baseline-stream", TypeBaselinePing: "baseline-ping",
}

func (t Type) String() string {
	if t > 0 && t < typeLimit {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Header is the fixed part of every frame.
type Header struct {
	Type  Type
	Flags uint16 // reserved, must be zero in version 1
	ID    uint32 // request id, echoed by the reply
	Len   uint32 // payload length
}

// AppendHeader appends the wire form of h to b.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, magic0, magic1, Version, byte(h.Type))
	b = binary.BigEndian.AppendUint16(b, h.Flags)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, h.ID)
	return binary.BigEndian.AppendUint32(b, h.Len)
}

// ParseHeader decodes and validates a frame header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("frame header: %d bytes: %w", len(b), fabric.ErrProtocol)
	}
	if b[0] != magic0 || b[1] != magic1 {
		return Header{}, fmt.Errorf("frame header: bad magic %#x%02x: %w", b[0], b[1], fabric.ErrProtocol)
	}
	if b[2] != Version {
		return Header{}, fmt.Errorf("frame header: version %d, want %d: %w", b[2], Version, fabric.ErrProtocol)
	}
	h := Header{
		Type:  Type(b[3]),
		Flags: binary.BigEndian.Uint16(b[4:]),
		ID:    binary.BigEndian.Uint32(b[8:]),
		Len:   binary.BigEndian.Uint32(b[12:]),
	}
	switch {
	case h.Type == 0 || h.Type >= typeLimit:
		return Header{}, fmt.Errorf("frame header: unknown %v: %w", h.Type, fabric.ErrProtocol)
	case h.Flags != 0 || binary.BigEndian.Uint16(b[6:]) != 0:
		return Header{}, fmt.Errorf("frame header: reserved bits set: %w", fabric.ErrProtocol)
	case h.Len > MaxPayload:
		return Header{}, fmt.Errorf("frame header: payload %d over %d: %w", h.Len, MaxPayload, fabric.ErrProtocol)
	}
	return h, nil
}

// ReadHeader reads and validates one frame header from r.
func ReadHeader(r io.Reader) (Header, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Header{}, err
	}
	return ParseHeader(b[:])
}

// ReadFrame reads one whole frame whose payload must not exceed limit.
func ReadFrame(r io.Reader, limit uint32) (Header, []byte, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return h, nil, err
	}
	if h.Len > limit {
		return h, nil, fmt.Errorf("%v frame: payload %d over %d: %w", h.Type, h.Len, limit, fabric.ErrProtocol)
	}
	p := make([]byte, h.Len)
	if _, err := io.ReadFull(r, p); err != nil {
		return h, nil, err
	}
	return h, p, nil
}

// WriteFrame writes one frame with a payload in a single write.
func WriteFrame(w io.Writer, t Type, id uint32, payload []byte) error {
	b := make([]byte, 0, HeaderSize+len(payload))
	b = AppendHeader(b, Header{Type: t, ID: id, Len: uint32(len(payload))})
	_, err := w.Write(append(b, payload...))
	return err
}
