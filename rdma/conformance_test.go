package rdma_test

import (
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
	"github.com/vmemtrans/vmemtrans/rdma"
)

// conformanceChainTimeout ends chains towards a killed sub-host well inside
// the suite's per-call bound (15 s): rxe never fires its RC retry timer
// towards a destroyed queue pair, so only the chain timeout notices. A
// healthy 32-page chain takes milliseconds even on rxe under TCG.
const conformanceChainTimeout = 3 * time.Second

// rdmaPeer serves a fresh region on its own sub-host (control server with a
// store backend and an RDMA responder on dev) and dials an RDMA Transport to
// it. Kill closes the control server and tears the responder down: every
// queue pair and the region's registration are gone when it returns.
func rdmaPeer(dev string, o rdma.Options) fabrictest.Factory {
	o.Device = dev
	o.ChainTimeout = conformanceChainTimeout
	return func(tb testing.TB, slots uint64) fabrictest.Peer {
		s := startSubhost(tb, dev)
		tr := dialOpts(tb, s, "conformance", o, slots)
		return fabrictest.Peer{Transport: tr, Kill: s.kill}
	}
}

// TestIntegrationRDMAConformance runs the fabric Transport conformance suite
// over real RDMA READ and WRITE chains.
func TestIntegrationRDMAConformance(t *testing.T) {
	fabrictest.Run(t, rdmaPeer(device(t), rdma.Options{}))
}

// TestIntegrationRDMAConformanceOneLane: a single shallow queue pair makes
// every batch a sequence of chains and concurrent callers queue for the lane.
func TestIntegrationRDMAConformanceOneLane(t *testing.T) {
	fabrictest.Run(t, rdmaPeer(device(t), rdma.Options{Lanes: 1, Depth: 4}))
}
