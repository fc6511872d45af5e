//go:build linux

package vmsock

import (
	"context"
	"io"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// BenchmarkMakeResident measures a self-paging round trip through the
// socket against a backend that does no work: the socket's own cost.
func BenchmarkMakeResident(b *testing.B) {
	for _, n := range []int{1, 64, MaxGFNsPerRequest} {
		b.Run(map[int]string{1: "gfns=1", 64: "gfns=64", MaxGFNsPerRequest: "gfns=max"}[n], func(b *testing.B) {
			_, path := startServer(b, newFakeBackend(b), nil)
			c := dial(b, path)
			gfns := make([]fabric.GFN, n)
			for i := range gfns {
				gfns[i] = fabric.GFN(i % ramPages)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, err := range c.MakeResident(context.Background(), gfns) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "gfns/s")
		})
	}
}

// BenchmarkFiles measures fetching both descriptors (SCM_RIGHTS).
func BenchmarkFiles(b *testing.B) {
	_, path := startServer(b, newFakeBackend(b), nil)
	c := dial(b, path)
	b.ReportAllocs()
	for b.Loop() {
		ram, lm, err := c.Files(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		ram.Close()
		lm.Close()
	}
}

// BenchmarkBarePingPong is the floor for BenchmarkMakeResident/gfns=1: a
// request and a reply of the same sizes over a bare unix socket pair.
func BenchmarkBarePingPong(b *testing.B) {
	client, server := socketPair(b)
	req, rep := make([]byte, HeaderSize+12), make([]byte, HeaderSize+5)
	go func() {
		buf := make([]byte, len(req))
		for {
			if _, err := io.ReadFull(server, buf); err != nil {
				return
			}
			if _, err := server.Write(rep); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, len(rep))
	for b.Loop() {
		if _, err := client.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			b.Fatal(err)
		}
	}
}
