package tcpfallback

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

func writeRead(t *testing.T, tr *Transport, slots []uint64, gen byte) {
	t.Helper()
	ctx := context.Background()
	w := make([]fabric.SlotIO, len(slots))
	for i, s := range slots {
		w[i] = fabric.SlotIO{Slot: s, Buf: page(s, gen)}
	}
	if err := tr.WriteSlots(ctx, w); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := make([]fabric.SlotIO, len(slots))
	for i, s := range slots {
		r[i] = fabric.SlotIO{Slot: s, Buf: make([]byte, fabric.PageSize)}
	}
	if err := tr.ReadSlots(ctx, r); err != nil {
		t.Fatalf("read: %v", err)
	}
	for i, s := range slots {
		if !bytes.Equal(r[i].Buf, page(s, gen)) {
			t.Fatalf("slot %d reads back different bytes", s)
		}
	}
}

func TestRoundTripSplitsAndPipelines(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 4096, InFlight: 3, MaxBatch: 7})
	if tr.Slots() != 4096 || tr.Kind() != "tcp" {
		t.Fatalf("slots %d kind %q", tr.Slots(), tr.Kind())
	}
	slots := make([]uint64, 1000)
	for i := range slots {
		slots[i] = uint64(i*37) % 4096
	}
	writeRead(t, tr, slots[:1], 1)
	writeRead(t, tr, slots, 2)
}

func TestBadEntriesFailAlone(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 16})
	writeRead(t, tr, []uint64{3}, 9)
	b := []fabric.SlotIO{
		{Slot: 3, Buf: make([]byte, fabric.PageSize)},
		{Slot: 16, Buf: make([]byte, fabric.PageSize)},
		{Slot: 4, Buf: make([]byte, 100)},
	}
	err := tr.ReadSlots(context.Background(), b)
	if !errors.Is(err, fabric.ErrPartial) {
		t.Fatalf("mixed batch = %v, want ErrPartial", err)
	}
	if b[0].Err != nil || !bytes.Equal(b[0].Buf, page(3, 9)) {
		t.Errorf("good entry: %v", b[0].Err)
	}
	if !errors.Is(b[1].Err, fabric.ErrSlotRange) || !errors.Is(b[2].Err, fabric.ErrBufferSize) {
		t.Errorf("bad entries: %v, %v", b[1].Err, b[2].Err)
	}
}

// The server's own per-entry check, bypassing the client's.
func TestServerReportsSlotRangePerEntry(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 16})
	tr.slots = 1 << 20 // pretend the region is larger than it is
	b := []fabric.SlotIO{{Slot: 1, Buf: make([]byte, 4096)}, {Slot: 500, Buf: make([]byte, 4096)}, {Slot: 2, Buf: make([]byte, 4096)}}
	err := tr.WriteSlots(context.Background(), b)
	if !errors.Is(err, fabric.ErrPartial) || !errors.Is(b[1].Err, fabric.ErrSlotRange) || b[0].Err != nil || b[2].Err != nil {
		t.Fatalf("write = %v; entries %v %v %v", err, b[0].Err, b[1].Err, b[2].Err)
	}
	err = tr.ReadSlots(context.Background(), b)
	if !errors.Is(err, fabric.ErrPartial) || !errors.Is(b[1].Err, fabric.ErrSlotRange) || b[0].Err != nil || b[2].Err != nil {
		t.Fatalf("read = %v; entries %v %v %v", err, b[0].Err, b[1].Err, b[2].Err)
	}
}

func TestStatsFreeSync(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 64})
	writeRead(t, tr, []uint64{1, 2, 3}, 5)
	ctx := context.Background()
	if err := tr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := tr.Stats(ctx)
	if err != nil || s.Slots != 64 || s.VM != "vm-a" || s.ResidentBytes < 3*4096 {
		t.Fatalf("stats = %+v, %v", s, err)
	}
	if err := tr.Free(ctx, []uint64{2, 99}); !errors.Is(err, fabric.ErrPartial) || !errors.Is(err, fabric.ErrSlotRange) {
		t.Fatalf("free with a bad slot = %v", err)
	}
	b := []fabric.SlotIO{{Slot: 2, Buf: page(0, 1)}}
	if err := tr.ReadSlots(ctx, b); err != nil || !bytes.Equal(b[0].Buf, make([]byte, 4096)) {
		t.Fatalf("freed slot must read as zeros (err %v)", err)
	}
}

func TestConcurrentCallers(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 8 * 300, InFlight: 2, MaxBatch: 32})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			slots := make([]uint64, 300)
			for i := range slots {
				slots[i] = uint64(g*300 + i)
			}
			writeRead(t, tr, slots, byte(g))
		})
	}
	wg.Wait()
}

func TestCancelledContext(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 8})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := []fabric.SlotIO{{Slot: 1, Buf: make([]byte, 4096)}}
	if err := tr.ReadSlots(ctx, b); !errors.Is(err, context.Canceled) || !errors.Is(b[0].Err, context.Canceled) {
		t.Fatalf("read with a cancelled context = %v / %v", err, b[0].Err)
	}
	writeRead(t, tr, []uint64{1}, 3) // still usable
}

// A peer that authenticates and then falls silent is detected by
// Options.Timeout, and by the caller's context before that.
func TestSilentPeer(t *testing.T) {
	sh := startSubhost(t)
	addr := muteProxy(t, sh.Addr, 2*(wire.HeaderSize+wire.NonceSize))
	start := time.Now()
	_, err := Dial(context.Background(), addr, "vm-a", testKey, Options{Slots: 8, Timeout: 300 * time.Millisecond})
	if !errors.Is(err, fabric.ErrPeer) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("dial of a silent peer = %v, want ErrPeer naming %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("silent peer detected after %v", d)
	}

	addr = muteProxy(t, sh.Addr, 2*(wire.HeaderSize+wire.NonceSize)+wire.HeaderSize+8)
	tr := dialT(t, addr, "vm-a", Options{Slots: 8, Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	b := []fabric.SlotIO{{Slot: 1, Buf: make([]byte, 4096)}}
	if err := tr.ReadSlots(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read from a silent peer = %v, want the context deadline", err)
	}
}

func TestPeerDeathFailsPendingCalls(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 4096, InFlight: 4, MaxBatch: 64})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			b := make([]fabric.SlotIO, 4096)
			for i := range b {
				b[i] = fabric.SlotIO{Slot: uint64(i), Buf: make([]byte, 4096)}
			}
			for {
				if err := tr.ReadSlots(context.Background(), b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	sh.Server.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("callers hang after the peer died")
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, fabric.ErrPeer) || !strings.Contains(err.Error(), sh.Addr) {
			t.Errorf("call after peer death = %v, want ErrPeer naming %s", err, sh.Addr)
		}
	}
	if err := tr.ReadSlots(context.Background(), []fabric.SlotIO{{Slot: 1, Buf: make([]byte, 4096)}}); !errors.Is(err, fabric.ErrPeer) {
		t.Errorf("later call = %v, want ErrPeer", err)
	}
}

func TestUseAfterClose(t *testing.T) {
	sh := startSubhost(t)
	tr := dialT(t, sh.Addr, "vm-a", Options{Slots: 8})
	tr.Close()
	tr.Close()
	b := []fabric.SlotIO{{Slot: 1, Buf: make([]byte, 4096)}}
	if err := tr.WriteSlots(context.Background(), b); !errors.Is(err, fabric.ErrClosed) || !errors.Is(b[0].Err, fabric.ErrClosed) {
		t.Fatalf("write after close = %v", err)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	sh := startSubhost(t)
	_, err := Dial(context.Background(), sh.Addr, "vm-a", bytes.Repeat([]byte{1}, 32), Options{Slots: 8})
	if !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("wrong key = %v, want ErrAuth", err)
	}
	if got := sh.Store.List(); len(got) != 0 {
		t.Fatalf("a refused client created regions %v", got)
	}
}

// Keys are per VM: a client that holds VM A's key can open neither VM B's
// region nor authenticate as B.
func TestVMIsolation(t *testing.T) {
	keys, _ := control.NewKeyring(map[string][]byte{"vm-a": testKey, "vm-b": bytes.Repeat([]byte{7}, 32)})
	sh := controltest.Start(t, keys).Addr
	b := dialTKey(t, sh, "vm-b", bytes.Repeat([]byte{7}, 32), Options{Slots: 8})
	writeRead(t, b, []uint64{1}, 77)

	if _, err := Dial(context.Background(), sh, "vm-b", testKey, Options{}); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("vm-a's key for vm-b = %v, want ErrAuth", err)
	}
	c, err := control.Dial(context.Background(), sh, "vm-a", testKey, control.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Open("vm-b", 0); !errors.Is(err, fabric.ErrForbidden) {
		t.Fatalf("vm-a opening vm-b = %v, want ErrForbidden", err)
	}
}

// Garbage from one client closes that client only.
func TestMalformedClientIsolated(t *testing.T) {
	sh := startSubhost(t)
	good := dialT(t, sh.Addr, "vm-a", Options{Slots: 64})
	writeRead(t, good, []uint64{1, 2}, 1)
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		wire.AppendHeader(nil, wire.Header{Type: wire.TypeRead, ID: 1, Len: 3}),
		append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeRead, ID: 1, Len: 12}), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0),
		wire.AppendHeader(nil, wire.Header{Type: wire.TypeProof, ID: 1}),
	} {
		conn, br, err := control.DialAuth(context.Background(), sh.Addr, "vm-c", testKey, control.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(junk); err != nil {
			t.Fatal(err)
		}
		if _, err := br.ReadByte(); err == nil {
			t.Errorf("junk %q: server answered instead of closing", junk)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("junk %q: server neither answered nor closed", junk)
		}
		conn.Close()
		writeRead(t, good, []uint64{1, 2}, 2)
	}
}
