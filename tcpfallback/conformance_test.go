package tcpfallback

import (
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
)

// peer serves a fresh region on its own sub-host; Kill closes the server's
// listener and every connection at once.
func peer(opts Options) fabrictest.Factory {
	return func(t testing.TB, slots uint64) fabrictest.Peer {
		sh := startSubhost(t)
		opts := opts
		opts.Slots = slots
		tr := dialT(t, sh.Addr, "conformance", opts)
		return fabrictest.Peer{Transport: tr, Kill: func() { sh.Server.Close() }}
	}
}

func TestConformance(t *testing.T) {
	fabrictest.Run(t, peer(Options{}))
}

// Small requests and a narrow window exercise splitting and queueing.
func TestConformanceSmallWindow(t *testing.T) {
	fabrictest.Run(t, peer(Options{InFlight: 1, MaxBatch: 3}))
}

func BenchmarkConformance(b *testing.B) {
	fabrictest.RunBenchmarks(b, peer(Options{InFlight: 4}))
}
