package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// Open asks for the region of VM, created with Slots slots if it does not
// exist; Slots 0 opens an existing region only.
type Open struct {
	VM    string
	Slots uint64
}

// AppendOpen encodes an Open payload.
func AppendOpen(b []byte, o Open) []byte {
	b = append(b, byte(len(o.VM)))
	b = append(b, o.VM...)
	return binary.BigEndian.AppendUint64(b, o.Slots)
}

// ParseOpen decodes an Open payload.
func ParseOpen(p []byte) (Open, error) {
	if len(p) < 1 || len(p) != 1+int(p[0])+8 {
		return Open{}, fmt.Errorf("open: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := int(p[0])
	o := Open{VM: string(p[1 : 1+n]), Slots: binary.BigEndian.Uint64(p[1+n:])}
	if store.ValidVMID(o.VM) != nil {
		return Open{}, fmt.Errorf("open: vm id %q: %w", o.VM, fabric.ErrProtocol)
	}
	return o, nil
}

// AppendUint64 encodes a single 64-bit value (the Opened payload).
func AppendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// ParseUint64 decodes a single 64-bit value payload.
func ParseUint64(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("u64 payload: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	return binary.BigEndian.Uint64(p), nil
}

// AppendSlots encodes a slot vector: count, then one 64-bit index per slot.
func AppendSlots(b []byte, slots []uint64) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(slots)))
	for _, s := range slots {
		b = binary.BigEndian.AppendUint64(b, s)
	}
	return b
}

// SlotVectorSize is the encoded size of a vector of n slots.
func SlotVectorSize(n int) int { return 4 + 8*n }

// ParseSlotCount reads the count that starts a slot vector, bounded by MaxSlotsPerRequest.
func ParseSlotCount(p []byte) (int, error) {
	if len(p) < 4 {
		return 0, fmt.Errorf("slot vector: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxSlotsPerRequest {
		return 0, fmt.Errorf("slot vector: %d slots over %d: %w", n, MaxSlotsPerRequest, fabric.ErrProtocol)
	}
	return int(n), nil
}

// ParseSlots decodes a slot vector that fills p exactly, appending to dst.
func ParseSlots(dst []uint64, p []byte) ([]uint64, error) {
	n, err := ParseSlotCount(p)
	if err != nil {
		return dst, err
	}
	if len(p) != SlotVectorSize(n) {
		return dst, fmt.Errorf("slot vector: %d bytes for %d slots: %w", len(p), n, fabric.ErrProtocol)
	}
	for i := range n {
		dst = append(dst, binary.BigEndian.Uint64(p[4+8*i:]))
	}
	return dst, nil
}

// AppendStatuses encodes per-slot statuses: count, then one code per slot.
func AppendStatuses(b []byte, codes []Code) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(codes)))
	for _, c := range codes {
		b = append(b, byte(c))
	}
	return b
}

// StatusesSize is the encoded size of n statuses.
func StatusesSize(n int) int { return 4 + n }

// ParseStatuses checks that p starts with exactly want statuses and returns
// them with the number of ok entries. Trailing bytes (the pages of a read
// reply) are left to the caller.
func ParseStatuses(p []byte, want int) (codes []byte, ok int, err error) {
	if len(p) < 4 {
		return nil, 0, fmt.Errorf("statuses: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	if n := binary.BigEndian.Uint32(p); n != uint32(want) {
		return nil, 0, fmt.Errorf("statuses: %d entries, want %d: %w", n, want, fabric.ErrProtocol)
	}
	if len(p) < StatusesSize(want) {
		return nil, 0, fmt.Errorf("statuses: %d bytes for %d entries: %w", len(p), want, fabric.ErrProtocol)
	}
	codes = p[4 : 4+want]
	for _, c := range codes {
		switch {
		case c == byte(CodeOK):
			ok++
		case Code(c) >= codeLimit:
			return nil, 0, fmt.Errorf("statuses: code %d: %w", c, fabric.ErrProtocol)
		}
	}
	return codes, ok, nil
}

// Stats describes the region a connection has open.
type Stats struct {
	VM            string `json:"vm"`
	Slots         uint64 `json:"slots"`
	ResidentBytes uint64 `json:"resident_bytes"`
}

// AppendStats encodes a StatsReply payload.
func AppendStats(b []byte, s Stats) []byte {
	b = binary.BigEndian.AppendUint64(b, s.Slots)
	b = binary.BigEndian.AppendUint64(b, s.ResidentBytes)
	b = append(b, byte(len(s.VM)))
	return append(b, s.VM...)
}

// ParseStats decodes a StatsReply payload.
func ParseStats(p []byte) (Stats, error) {
	if len(p) < 17 || len(p) != 17+int(p[16]) {
		return Stats{}, fmt.Errorf("stats: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	s := Stats{
		Slots:         binary.BigEndian.Uint64(p),
		ResidentBytes: binary.BigEndian.Uint64(p[8:]),
		VM:            string(p[17:]),
	}
	if store.ValidVMID(s.VM) != nil {
		return Stats{}, fmt.Errorf("stats: vm id %q: %w", s.VM, fabric.ErrProtocol)
	}
	return s, nil
}

// Limits of the baseline operations, so a client cannot pin a server forever.
const (
	MaxBaselineBytes  = 64 << 30
	MaxBaselineChunk  = 4 << 20
	MaxBaselineRounds = 10_000_000
	MaxBaselineFrame  = 1 << 20
)

// BaselineStream asks the server to write Total raw bytes in writes of Chunk bytes.
type BaselineStream struct {
	Total uint64
	Chunk uint32
}

// AppendBaselineStream encodes a BaselineStream payload.
func AppendBaselineStream(b []byte, s BaselineStream) []byte {
	b = binary.BigEndian.AppendUint64(b, s.Total)
	return binary.BigEndian.AppendUint32(b, s.Chunk)
}

// ParseBaselineStream decodes and bounds a BaselineStream payload.
func ParseBaselineStream(p []byte) (BaselineStream, error) {
	if len(p) != 12 {
		return BaselineStream{}, fmt.Errorf("baseline stream: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	s := BaselineStream{Total: binary.BigEndian.Uint64(p), Chunk: binary.BigEndian.Uint32(p[8:])}
	if s.Total > MaxBaselineBytes || s.Chunk == 0 || s.Chunk > MaxBaselineChunk {
		return BaselineStream{}, fmt.Errorf("baseline stream: %d bytes in chunks of %d: %w", s.Total, s.Chunk, fabric.ErrProtocol)
	}
	return s, nil
}

// BaselinePing asks for Rounds raw exchanges: the client writes Request
// bytes, the server answers Reply bytes.
type BaselinePing struct {
	Rounds, Request, Reply uint32
}

// AppendBaselinePing encodes a BaselinePing payload.
func AppendBaselinePing(b []byte, p BaselinePing) []byte {
	b = binary.BigEndian.AppendUint32(b, p.Rounds)
	b = binary.BigEndian.AppendUint32(b, p.Request)
	return binary.BigEndian.AppendUint32(b, p.Reply)
}

// ParseBaselinePing decodes and bounds a BaselinePing payload.
func ParseBaselinePing(p []byte) (BaselinePing, error) {
	if len(p) != 12 {
		return BaselinePing{}, fmt.Errorf("baseline ping: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	b := BaselinePing{
		Rounds:  binary.BigEndian.Uint32(p),
		Request: binary.BigEndian.Uint32(p[4:]),
		Reply:   binary.BigEndian.Uint32(p[8:]),
	}
	if b.Rounds > MaxBaselineRounds || b.Request == 0 || b.Request > MaxBaselineFrame || b.Reply == 0 || b.Reply > MaxBaselineFrame {
		return BaselinePing{}, fmt.Errorf("baseline ping: %d rounds of %d/%d bytes: %w", b.Rounds, b.Request, b.Reply, fabric.ErrProtocol)
	}
	return b, nil
}
