package rdma

import (
	"fmt"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// QP names one end of a reliable-connected queue pair.
type QP struct {
	QPN uint32 // queue pair number (24 bits)
	PSN uint32 // initial packet sequence number (24 bits)
}

// ConnParams is what the two ends exchange over the authenticated control
// connection to connect their queue pairs. The client fills GID, QPs, MaxRd
// and MTU; the sub-host answers with its own and the region's RKey, Addr and
// Len.
type ConnParams struct {
	GID   [16]byte // RoCE v2 GID (IPv4-mapped) of the sender's port
	QPs   []QP     // one per lane, pairwise connected in order
	MaxRd uint8    // outstanding RDMA READs the sender accepts per QP
	MTU   uint8    // ibv_mtu enum of the sender's active MTU (1=256 .. 5=4096)
	RKey  uint32   // region key (sub-host reply only)
	Addr  uint64   // region virtual address (sub-host reply only)
	Len   uint64   // region length in bytes (sub-host reply only)
}

// Validate checks a request or reply before any verbs resource is created.
func (p ConnParams) Validate(reply bool) error {
	if len(p.QPs) == 0 || len(p.QPs) > wire.MaxQPs {
		return fmt.Errorf("rdma params: %d queue pairs, want 1..%d: %w", len(p.QPs), wire.MaxQPs, fabric.ErrProtocol)
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

// Options configure the main-host side of an RDMA connection.
type Options struct {
	Device string // verbs device name, such as rxe0 or mlx5_0
	Lanes  int    // queue pairs; 0 means DefaultLanes
	Depth  int    // work requests per chain and queue pair; 0 means DefaultDepth (capped by the device)
	// ChainTimeout bounds the wait for a posted chain's completion; 0 means
	// DefaultChainTimeout. It is what ends chains to a dead peer on
	// providers whose RC retry timer never fires (rxe to a destroyed queue
	// pair), so it must exceed the slowest healthy chain.
	ChainTimeout time.Duration
}

// Defaults: 4 lanes of 32 give 128 outstanding 4 KiB requests, the depth
// ib_read_bw uses, while staying within every device's max_rd_atomic.
const (
	DefaultLanes = 4
	DefaultDepth = 32
	// DefaultChainTimeout: a healthy chain of 32 pages takes microseconds on
	// a NIC and milliseconds on rxe; a dead peer on a NIC ends chains with
	// RETRY_EXC_ERR in about half a second, long before this.
	DefaultChainTimeout = 10 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Lanes <= 0 {
		o.Lanes = DefaultLanes
	}
	o.Lanes = min(o.Lanes, wire.MaxQPs)
	if o.Depth <= 0 {
		o.Depth = DefaultDepth
	}
	if o.ChainTimeout <= 0 {
		o.ChainTimeout = DefaultChainTimeout
	}
	return o
}
