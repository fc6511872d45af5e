package rdma_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/rdma"
)

// DeviceEnv names the verbs device integration tests and benchmarks use.
const DeviceEnv = "VMEMTRANS_RDMA_DEV"

var key = bytes.Repeat([]byte{0x5a}, 32)

// device returns the RDMA device to test on, or skips with what to do.
func device(tb testing.TB) string {
	tb.Helper()
	dev := os.Getenv(DeviceEnv)
	if dev == "" {
		tb.Skip("no RDMA device: run make rig (or set " + DeviceEnv + "=DEV on a host with one)")
	}
	if !rdma.Built {
		tb.Skip("built without RDMA support: rebuild the test with -tags rdma")
	}
	return dev
}

type subhost struct {
	*controltest.Subhost
	resp *rdma.Responder
}

// startSubhost serves a fresh store over the control protocol on loopback,
// with RDMA answered by a Responder on dev.
func startSubhost(tb testing.TB, dev string) *subhost {
	tb.Helper()
	resp, err := rdma.NewResponder(dev)
	if err != nil {
		tb.Fatal(err)
	}
	sh := controltest.Start(tb, controltest.SharedKey(tb, key), func(c *control.ServerConfig) { c.RDMA = resp })
	s := &subhost{Subhost: sh, resp: resp}
	tb.Cleanup(s.kill) // runs before the store closes: cleanups run last first
	return s
}

func (s *subhost) kill() {
	s.Server.Close()
	s.resp.Close()
}

func dial(tb testing.TB, s *subhost, dev, vm string, slots uint64) *rdma.Transport {
	tb.Helper()
	return dialOpts(tb, s, vm, rdma.Options{Device: dev}, slots)
}

func dialOpts(tb testing.TB, s *subhost, vm string, o rdma.Options, slots uint64) *rdma.Transport {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t, err := rdma.Dial(ctx, s.Addr, vm, key, rdma.DialOptions{Options: o, Slots: slots})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.Close() })
	return t
}

func fill(b []byte, slot uint64, gen uint64) {
	for off := 0; off < len(b); off += 8 {
		binary.LittleEndian.PutUint64(b[off:], slot<<32|gen<<16|uint64(off))
	}
}

func pageBatch(slots []uint64) []fabric.SlotIO {
	b := make([]fabric.SlotIO, len(slots))
	for i, s := range slots {
		b[i] = fabric.SlotIO{Slot: s, Buf: make([]byte, fabric.PageSize)}
	}
	return b
}

func TestIntegrationRDMATransport(t *testing.T) {
	dev := device(t)
	s := startSubhost(t, dev)
	const slots = 512
	tr := dial(t, s, dev, "vm1", slots)
	if tr.Kind() != "rdma" || tr.Slots() != slots {
		t.Fatalf("kind %q slots %d", tr.Kind(), tr.Slots())
	}
	ctx := context.Background()

	// Write every slot (several chains over several lanes), read them back.
	all := make([]uint64, slots)
	for i := range all {
		all[i] = uint64(i)
	}
	w := pageBatch(all)
	for i := range w {
		fill(w[i].Buf, w[i].Slot, 1)
	}
	if err := tr.WriteSlots(ctx, w); err != nil {
		t.Fatalf("write: %v", err)
	}
	perm := rand.Perm(slots)
	rs := make([]uint64, slots)
	for i, p := range perm {
		rs[i] = uint64(p)
	}
	r := pageBatch(rs)
	if err := tr.ReadSlots(ctx, r); err != nil {
		t.Fatalf("read: %v", err)
	}
	want := make([]byte, fabric.PageSize)
	for _, e := range r {
		fill(want, e.Slot, 1)
		if !bytes.Equal(e.Buf, want) {
			t.Fatalf("slot %d read back wrong data", e.Slot)
		}
	}

	// The one-sided WRITE landed in the sub-host's store mapping itself.
	reg, err := s.Store.Lookup("vm1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := reg.Slot(77)
	if err != nil {
		t.Fatal(err)
	}
	fill(want, 77, 1)
	if !bytes.Equal(p, want) {
		t.Fatal("store slot 77 does not hold the RDMA-written page")
	}

	// Registered buffers are filled in place.
	bufs, err := tr.Alloc(8)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]fabric.SlotIO, len(bufs))
	for i := range in {
		in[i] = fabric.SlotIO{Slot: uint64(100 + i*3), Buf: bufs[i]}
	}
	if err := tr.ReadSlots(ctx, in); err != nil {
		t.Fatalf("in-place read: %v", err)
	}
	for _, e := range in {
		fill(want, e.Slot, 1)
		if !bytes.Equal(e.Buf, want) {
			t.Fatalf("in-place slot %d wrong", e.Slot)
		}
	}

	// Bad entries fail alone; the rest of the batch is served.
	mixed := pageBatch([]uint64{5, slots, 6, slots + 1000})
	mixed = append(mixed, fabric.SlotIO{Slot: 7, Buf: make([]byte, 100)})
	err = tr.ReadSlots(ctx, mixed)
	if !errors.Is(err, fabric.ErrPartial) {
		t.Fatalf("mixed batch err = %v, want ErrPartial", err)
	}
	if mixed[0].Err != nil || mixed[2].Err != nil || !errors.Is(mixed[1].Err, fabric.ErrSlotRange) ||
		!errors.Is(mixed[3].Err, fabric.ErrSlotRange) || !errors.Is(mixed[4].Err, fabric.ErrBufferSize) {
		t.Fatalf("mixed entry errors: %v %v %v %v %v", mixed[0].Err, mixed[1].Err, mixed[2].Err, mixed[3].Err, mixed[4].Err)
	}
	fill(want, 6, 1)
	if !bytes.Equal(mixed[2].Buf, want) {
		t.Fatal("good entry of a mixed batch not filled")
	}

	// Concurrent batches share the lanes.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for it := 0; it < 5; it++ {
				b := pageBatch([]uint64{uint64(g), uint64(g + 100), uint64(g + 200), uint64(g + 300)})
				if err := tr.ReadSlots(ctx, b); err != nil {
					errs <- err
					return
				}
				w := make([]byte, fabric.PageSize)
				for _, e := range b {
					fill(w, e.Slot, 1)
					if !bytes.Equal(e.Buf, w) {
						errs <- errors.New("concurrent read got wrong data")
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// A cancelled context posts nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tr.ReadSlots(cctx, pageBatch([]uint64{1, 2})); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read = %v", err)
	}

	// Closed transport.
	tr.Close()
	if err := tr.ReadSlots(ctx, pageBatch([]uint64{1})); !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("read after close = %v, want ErrClosed", err)
	}
}

// TestIntegrationRDMAPeerGone: when the sub-host tears the client's queue
// pairs down, batches fail with ErrPeer instead of hanging.
func TestIntegrationRDMAPeerGone(t *testing.T) {
	dev := device(t)
	s := startSubhost(t, dev)
	tr := dial(t, s, dev, "vm2", 64)
	ctx := context.Background()
	if err := tr.ReadSlots(ctx, pageBatch([]uint64{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	s.Server.Close() // ends the control session: the responder destroys the queue pairs
	time.Sleep(200 * time.Millisecond)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := tr.ReadSlots(ctx, pageBatch([]uint64{1, 2, 3, 4, 5, 6, 7, 8}))
		if errors.Is(err, fabric.ErrPeer) {
			t.Logf("after the sub-host hung up: %v", err)
			return
		}
		if err != nil {
			t.Fatalf("after the sub-host hung up: %v, want ErrPeer", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("reads still succeed two minutes after the sub-host destroyed the queue pairs")
		}
	}
}

// TestIntegrationRDMAForbidden: an unauthenticated client never reaches rdma-connect.
func TestIntegrationRDMAWrongKey(t *testing.T) {
	dev := device(t)
	s := startSubhost(t, dev)
	_, err := rdma.Dial(context.Background(), s.Addr, "vm3", bytes.Repeat([]byte{1}, 32),
		rdma.DialOptions{Options: rdma.Options{Device: dev}, Slots: 8})
	if !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
}

// BenchmarkReadSlots measures batched 4 KiB RDMA READs of random slots, the
// path proxy paging uses; the rig compares it with ib_read_bw -s 4096.
func BenchmarkReadSlots(b *testing.B) {
	dev := device(b)
	s := startSubhost(b, dev)
	const slots, batch = 1024, 256
	tr := dial(b, s, dev, "bench", slots)
	bufs, err := tr.Alloc(batch)
	if err != nil {
		b.Fatal(err)
	}
	io := make([]fabric.SlotIO, batch)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.SetBytes(batch * fabric.PageSize)
	b.ResetTimer()
	for b.Loop() {
		for i := range io {
			io[i] = fabric.SlotIO{Slot: rng.Uint64N(slots), Buf: bufs[i]}
		}
		if err := tr.ReadSlots(ctx, io); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "pages/s")
}
