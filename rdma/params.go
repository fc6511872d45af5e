package rdma

import (
	"time"

	"github.com/vmemtrans/vmemtrans/internal/wire"
)

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
