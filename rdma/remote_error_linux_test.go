//go:build linux && cgo && rdma

package rdma

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// TestIntegrationRDMARemoteAccessError: a READ past the sub-host region (the
// client-side bounds check defeated on purpose) fails that entry with
// REM_ACCESS_ERR mapped to ErrSlotRange, flushes the rest of its chain with
// ErrPeer, and returns without hanging.
func TestIntegrationRDMARemoteAccessError(t *testing.T) {
	dev := os.Getenv("VMEMTRANS_RDMA_DEV")
	if dev == "" {
		t.Skip("no RDMA device: run make rig")
	}
	resp, err := NewResponder(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	region, err := mmapPages(16)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Register("vm", region); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(Options{Device: dev, Lanes: 1, Depth: 8})
	if err != nil {
		t.Fatal(err)
	}
	reply, conn, err := resp.Accept("vm", p.Request())
	if err != nil {
		p.Abort()
		t.Fatal(err)
	}
	defer conn.Close()
	tr, err := p.Complete(reply)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.slots = 64 // lie: the region has 16
	batch := []fabric.SlotIO{{Slot: 1}, {Slot: 40}, {Slot: 2}}
	for i := range batch {
		batch[i].Buf = make([]byte, fabric.PageSize)
	}
	done := make(chan error, 1)
	go func() { done <- tr.ReadSlots(context.Background(), batch) }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("read past the region hung")
	}
	if !errors.Is(err, fabric.ErrPartial) || batch[0].Err != nil ||
		!errors.Is(batch[1].Err, fabric.ErrSlotRange) || !errors.Is(batch[2].Err, fabric.ErrPeer) {
		t.Fatalf("err %v; entries %v / %v / %v", err, batch[0].Err, batch[1].Err, batch[2].Err)
	}
	t.Logf("remote access error surfaced as: %v", batch[1].Err)
	// The only lane is retired: later batches fail fast with ErrPeer.
	if err := tr.ReadSlots(context.Background(), []fabric.SlotIO{{Slot: 1, Buf: make([]byte, fabric.PageSize)}}); !errors.Is(err, fabric.ErrPeer) {
		t.Fatalf("after the lane failed: %v, want ErrPeer", err)
	}
}
