package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// MaxQPs bounds the queue pairs of one rdma-connect exchange: the queue
// pairs a client may make a sub-host create for it.
const MaxQPs = 16

// QPInfoSize is the wire size of one QPInfo.
const QPInfoSize = 48

// QPInfo is one side's parameters of an RDMA queue pair. The server's
// QPInfo also names the memory region the client may READ/WRITE
// (RKey, Addr, Length); the client's leaves them zero.
type QPInfo struct {
	GID    [16]byte
	QPN    uint32
	PSN    uint32
	RKey   uint32
	Addr   uint64
	Length uint64
	LID    uint16
	MTU    uint8 // ibv_mtu enum value, 0 when unset
	Flags  uint8 // reserved for the RDMA transport
}

// AppendQPInfos encodes an rdma-connect payload: count, then the queue pairs.
func AppendQPInfos(b []byte, qps []QPInfo) []byte {
	b = append(b, byte(len(qps)))
	for _, q := range qps {
		b = append(b, q.GID[:]...)
		b = binary.BigEndian.AppendUint32(b, q.QPN)
		b = binary.BigEndian.AppendUint32(b, q.PSN)
		b = binary.BigEndian.AppendUint32(b, q.RKey)
		b = binary.BigEndian.AppendUint64(b, q.Addr)
		b = binary.BigEndian.AppendUint64(b, q.Length)
		b = binary.BigEndian.AppendUint16(b, q.LID)
		b = append(b, q.MTU, q.Flags)
	}
	return b
}

// ParseQPInfos decodes an rdma-connect payload (1 to MaxQPs queue pairs; a
// disconnect may carry zero).
func ParseQPInfos(p []byte) ([]QPInfo, error) {
	if len(p) < 1 {
		return nil, fmt.Errorf("rdma queue pairs: empty: %w", fabric.ErrProtocol)
	}
	n := int(p[0])
	if n > MaxQPs || len(p) != 1+n*QPInfoSize {
		return nil, fmt.Errorf("rdma queue pairs: %d bytes for %d: %w", len(p), n, fabric.ErrProtocol)
	}
	qps := make([]QPInfo, n)
	for i := range qps {
		b := p[1+i*QPInfoSize:]
		q := &qps[i]
		copy(q.GID[:], b)
		q.QPN = binary.BigEndian.Uint32(b[16:])
		q.PSN = binary.BigEndian.Uint32(b[20:])
		q.RKey = binary.BigEndian.Uint32(b[24:])
		q.Addr = binary.BigEndian.Uint64(b[28:])
		q.Length = binary.BigEndian.Uint64(b[36:])
		q.LID = binary.BigEndian.Uint16(b[44:])
		q.MTU, q.Flags = b[46], b[47]
		if q.QPN >= 1<<24 || q.PSN >= 1<<24 {
			return nil, fmt.Errorf("rdma queue pair %d: qpn %#x psn %#x over 24 bits: %w", i, q.QPN, q.PSN, fabric.ErrProtocol)
		}
	}
	return qps, nil
}
