//go:build linux

package test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// TestIntegrationRuntimeOverTCP splits an image over two sub-hosts reached
// over TCP and reads every page back through fabric.Memory with each method.
func TestIntegrationRuntimeOverTCP(t *testing.T) {
	img := newSplitImage(512, 32, 512)
	key := []byte("0123456789abcdef0123456789abcdef")
	keys := controltest.SharedKey(t, key)
	var subs []fabric.Transport
	for range 2 {
		sh := controltest.Start(t, keys)
		tr, err := tcpfallback.Dial(context.Background(), sh.Addr, "vm-split", key,
			tcpfallback.Options{Slots: kvmhost.SlotsNeeded(img.layout, 2)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		subs = append(subs, tr)
	}
	rt := startSynthSplit(t, img, subs, 25, kvmhost.WorkloadConfig{})
	gs := img.backed()
	buf := make([]byte, len(gs)*fabric.PageSize)
	for _, method := range []fabric.Method{fabric.MethodProxy, fabric.MethodAdaptive, fabric.MethodSelf} {
		m := synthReaderOf(t, rt, method)
		// Batches well below the resident limit (256 pages), as self paging
		// needs: a larger request would evict its own first pages.
		const batch = 64
		for pass := range 2 {
			for at := 0; at < len(gs); at += batch {
				part := gs[at:min(at+batch, len(gs))]
				for i, r := range synthReadPages(m, part, buf) {
					if r.Err != nil || !bytes.Equal(r.Buf, img.page(part[i])) {
						t.Fatalf("%v pass %d gfn %#x: err %v, equal %v", method, pass, uint64(part[i]), r.Err, bytes.Equal(r.Buf, img.page(part[i])))
					}
				}
			}
		}
		hole := []physmem.Range{{Addr: 520 * fabric.PageSize, Buf: make([]byte, 8)}}
		if err := m.ReadPhys(hole); !errors.Is(hole[0].Err, physmem.ErrOutOfRange) {
			t.Fatalf("%v: read in the hole: %v / %v, want ErrOutOfRange", method, err, hole[0].Err)
		}
		t.Logf("%v: %+v", method, m.Stats())
	}
	if st := rt.Stats(); st.ExchangedPages == 0 || st.PageOuts == 0 {
		t.Fatalf("self paging moved nothing: %+v", st)
	}
}

// TestRuntimeChurnSynthetic runs the workload and self paging churning pages while
// parallel IDS readers read through fabric.Memory, with every method, at
// least a million pages, and counts the pages that are neither the image's
// content nor one whole workload stamp of that frame.
func TestRuntimeChurnSynthetic(t *testing.T) {
	img := newSplitImage(1536, 64, 512)
	gs := img.backed()
	var writable []fabric.GFN
	isWritable := map[fabric.GFN]bool{}
	for i := 0; i < len(gs); i += 4 {
		writable = append(writable, gs[i])
		isWritable[gs[i]] = true
	}
	subs := []fabric.Transport{
		fabrictest.NewMemTransport(kvmhost.SlotsNeeded(img.layout, 2), 0),
		fabrictest.NewMemTransport(kvmhost.SlotsNeeded(img.layout, 2), 0),
	}
	rt := startSynthSplit(t, img, subs, 25, kvmhost.WorkloadConfig{
		Threads: 2, HotSetPages: 256, WriteRatio: 0.5, WritableGFNs: writable, Rate: 50000, Seed: 7,
	})
	const want = 1_000_000
	var reads, mismatches, torn, failed atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // self paging churn
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		batch := make([]fabric.GFN, 32)
		for ctx.Err() == nil {
			for i := range batch {
				batch[i] = gs[rng.IntN(len(gs))]
			}
			rt.MakeResident(ctx, batch)
		}
	}()
	// check reports whether a page read is sound, re-reading a page that
	// may have been copied while the workload stamped it.
	check := func(m *fabric.Memory, g fabric.GFN, page []byte) bool {
		for try := 0; ; try++ {
			if bytes.Equal(page, img.page(g)) || isWritable[g] && kvmhost.VerifyStamp(g, page) {
				return true
			}
			if try == 100 {
				return false
			}
			torn.Add(1)
			time.Sleep(10 * time.Microsecond)
			if r := synthReadPages(m, []fabric.GFN{g}, page); r[0].Err != nil {
				return false
			}
		}
	}
	methods := []fabric.Method{fabric.MethodProxy, fabric.MethodAdaptive, fabric.MethodSelf, fabric.MethodAdaptive}
	t0 := time.Now()
	for i, method := range methods {
		m := synthReaderOf(t, rt, method)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			const n = 128
			batch := make([]fabric.GFN, n)
			buf := make([]byte, n*fabric.PageSize)
			for ctx.Err() == nil && reads.Load() < want {
				start := rng.IntN(len(gs) - n)
				for k := range batch {
					if rng.IntN(2) == 0 {
						batch[k] = gs[start+k] // runs, as scans read
					} else {
						batch[k] = gs[rng.IntN(len(gs))]
					}
				}
				for k, r := range synthReadPages(m, batch, buf) {
					if r.Err != nil {
						failed.Add(1)
						if failed.Load() < 5 {
							t.Logf("%v gfn %#x: %v", method, uint64(batch[k]), r.Err)
						}
						continue
					}
					if !check(m, batch[k], r.Buf) {
						if mismatches.Add(1) < 5 {
							t.Errorf("%v gfn %#x: neither the image nor a stamp", method, uint64(batch[k]))
						}
					}
				}
				reads.Add(n)
			}
		}()
	}
	for reads.Load() < want && time.Since(t0) < 3*time.Minute {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	st := rt.Stats()
	t.Logf("reads=%d mismatches=%d torn_rereads=%d failed=%d in %v", reads.Load(), mismatches.Load(), torn.Load(), failed.Load(), time.Since(t0))
	t.Logf("runtime %+v", st)
	if reads.Load() < want {
		t.Fatalf("only %d page reads in 3 minutes", reads.Load())
	}
	if mismatches.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d mismatching and %d failed page reads", mismatches.Load(), failed.Load())
	}
	if st.WorkloadWrites == 0 || st.PageOuts == 0 || st.ExchangedPages == 0 {
		t.Fatalf("nothing churned: %+v", st)
	}
}
