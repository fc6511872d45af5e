package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// MaxQPs bounds the queue pairs of one rdma-connect exchange: the queue
// pairs a client may make a sub-host create for it.
const MaxQPs = 16

// qpEntrySize is the wire size of one queue pair's entry.
const qpEntrySize = 48

// MaxRDMAParamsSize is the largest rdma-connect payload.
const MaxRDMAParamsSize = 1 + MaxQPs*qpEntrySize

// QP names one end of a reliable-connected queue pair.
type QP struct {
	QPN uint32 // queue pair number (24 bits)
	PSN uint32 // initial packet sequence number (24 bits)
}

// RDMAParams is what the two ends exchange over the authenticated control
// connection to connect their queue pairs. The client fills GID, QPs, MaxRd
// and MTU; the sub-host answers with its own and the region's RKey, Addr and
// Len. A disconnect carries the sub-host's parameters back (or none).
type RDMAParams struct {
	GID   [16]byte // RoCE v2 GID (IPv4-mapped) of the sender's port
	QPs   []QP     // one per lane, pairwise connected in order
	MaxRd uint8    // outstanding RDMA READs the sender accepts per QP
	MTU   uint8    // ibv_mtu enum of the sender's active MTU (1=256 .. 5=4096)
	RKey  uint32   // region key (sub-host reply only)
	Addr  uint64   // region virtual address (sub-host reply only)
	Len   uint64   // region length in bytes (sub-host reply only)
}

// Validate checks a request or reply before any verbs resource is created.
func (p RDMAParams) Validate(reply bool) error {
	if len(p.QPs) == 0 || len(p.QPs) > MaxQPs {
		return fmt.Errorf("rdma params: %d queue pairs, want 1..%d: %w", len(p.QPs), MaxQPs, fabric.ErrProtocol)
	}
	for _, q := range p.QPs {
		if q.QPN == 0 || q.QPN >= 1<<24 || q.PSN >= 1<<24 {
			return fmt.Errorf("rdma params: queue pair %d/%d out of 24-bit range: %w", q.QPN, q.PSN, fabric.ErrProtocol)
		}
	}
	if p.MaxRd == 0 {
		return fmt.Errorf("rdma params: zero read depth: %w", fabric.ErrProtocol)
	}
	if p.MTU < 1 || p.MTU > 5 {
		return fmt.Errorf("rdma params: mtu code %d not in 1..5: %w", p.MTU, fabric.ErrProtocol)
	}
	if reply {
		if p.Len == 0 || p.Len%fabric.PageSize != 0 || p.Addr%fabric.PageSize != 0 {
			return fmt.Errorf("rdma params: region %#x+%d not page aligned: %w", p.Addr, p.Len, fabric.ErrProtocol)
		}
		if p.Addr+p.Len < p.Addr {
			return fmt.Errorf("rdma params: region %#x+%d wraps: %w", p.Addr, p.Len, fabric.ErrProtocol)
		}
	}
	return nil
}

// AppendRDMAParams encodes an rdma-connect payload: the count of queue
// pairs, then one 48-byte entry per queue pair, each repeating the GID,
// region and MTU (the read depth travels in the entry's last byte; the
// 16-bit LID is reserved, zero).
func AppendRDMAParams(b []byte, p RDMAParams) []byte {
	b = append(b, byte(len(p.QPs)))
	for _, q := range p.QPs {
		b = append(b, p.GID[:]...)
		b = binary.BigEndian.AppendUint32(b, q.QPN)
		b = binary.BigEndian.AppendUint32(b, q.PSN)
		b = binary.BigEndian.AppendUint32(b, p.RKey)
		b = binary.BigEndian.AppendUint64(b, p.Addr)
		b = binary.BigEndian.AppendUint64(b, p.Len)
		b = binary.BigEndian.AppendUint16(b, 0)
		b = append(b, p.MTU, p.MaxRd)
	}
	return b
}

// ParseRDMAParams decodes an rdma-connect payload of 0 (a disconnect may
// carry none) to MaxQPs queue pairs. Entries that disagree on GID, region,
// MTU or read depth are a protocol violation; whether the parameters can be
// used is Validate's question.
func ParseRDMAParams(b []byte) (RDMAParams, error) {
	var p RDMAParams
	if len(b) < 1 {
		return p, fmt.Errorf("rdma queue pairs: empty: %w", fabric.ErrProtocol)
	}
	n := int(b[0])
	if n > MaxQPs || len(b) != 1+n*qpEntrySize {
		return p, fmt.Errorf("rdma queue pairs: %d bytes for %d: %w", len(b), n, fabric.ErrProtocol)
	}
	for i := 0; i < n; i++ {
		e := b[1+i*qpEntrySize:]
		var gid [16]byte
		copy(gid[:], e)
		q := QP{QPN: binary.BigEndian.Uint32(e[16:]), PSN: binary.BigEndian.Uint32(e[20:])}
		rkey, addr, length := binary.BigEndian.Uint32(e[24:]), binary.BigEndian.Uint64(e[28:]), binary.BigEndian.Uint64(e[36:])
		lid, mtu, maxRd := binary.BigEndian.Uint16(e[44:]), e[46], e[47]
		if q.QPN >= 1<<24 || q.PSN >= 1<<24 {
			return RDMAParams{}, fmt.Errorf("rdma queue pair %d: qpn %#x psn %#x over 24 bits: %w", i, q.QPN, q.PSN, fabric.ErrProtocol)
		}
		if lid != 0 {
			return RDMAParams{}, fmt.Errorf("rdma queue pair %d: reserved lid %#x set: %w", i, lid, fabric.ErrProtocol)
		}
		if i == 0 {
			p = RDMAParams{GID: gid, MaxRd: maxRd, MTU: mtu, RKey: rkey, Addr: addr, Len: length}
		} else if gid != p.GID || mtu != p.MTU || maxRd != p.MaxRd || rkey != p.RKey || addr != p.Addr || length != p.Len {
			return RDMAParams{}, fmt.Errorf("rdma queue pair %d disagrees with the first: %w", i, fabric.ErrProtocol)
		}
		p.QPs = append(p.QPs, q)
	}
	return p, nil
}
