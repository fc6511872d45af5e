//go:build linux

package kvmhost

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// flakyTransport fails every batch with ErrPeer while down is set.
type flakyTransport struct {
	fabric.Transport
	down atomic.Bool
}

func (f *flakyTransport) fail(batch []fabric.SlotIO) error {
	for i := range batch {
		batch[i].Err = fabric.ErrPeer
	}
	return fabric.ErrPeer
}

func (f *flakyTransport) ReadSlots(ctx context.Context, b []fabric.SlotIO) error {
	if f.down.Load() {
		return f.fail(b)
	}
	return f.Transport.ReadSlots(ctx, b)
}

func (f *flakyTransport) WriteSlots(ctx context.Context, b []fabric.SlotIO) error {
	if f.down.Load() {
		return f.fail(b)
	}
	return f.Transport.WriteSlots(ctx, b)
}

// TestDeadSubhost: while the sub-host is down, self paging fails per GFN
// with ErrPeer and the page stays remote, its word untouched; a fault waits
// and retries; page-outs fail and keep their pages. Once the sub-host is
// back, the waiting fault completes with the right content.
func TestDeadSubhost(t *testing.T) {
	img := testImage(128, 0, 0)
	ft := &flakyTransport{Transport: memSubhosts(img.layout, 1)[0]}
	rt := newTestRuntime(t, img, []fabric.Transport{ft}, 25, WorkloadConfig{})
	remote := rt.framesIn(fabric.StateRemote, 2)
	ft.down.Store(true)

	before := rt.locs.Load(remote[0])
	err := rt.MakeResident(context.Background(), remote[:1])[0]
	if !errors.Is(err, fabric.ErrPeer) {
		t.Fatalf("make resident with the sub-host down: %v, want ErrPeer", err)
	}
	after := rt.locs.Load(remote[0])
	if after != before {
		t.Fatalf("word %v -> %v after a failed page-in, want it untouched", before, after)
	}
	if n := rt.evictNow(rt.framesIn(fabric.StateLocal, 4)); n != 0 {
		t.Fatalf("%d pages went out to a dead sub-host", n)
	}
	if st := rt.Stats(); st.PageOutErrors == 0 || st.PageInErrors == 0 {
		t.Fatalf("errors not counted: %+v", st)
	}
	for _, g := range rt.framesIn(fabric.StateLocal, 4) {
		if rt.locs.Load(g).State() != fabric.StateLocal {
			t.Fatalf("gfn %d left local after a failed page-out", g)
		}
	}

	got := make([]byte, fabric.PageSize)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		rt.readGuest(remote[1], got)
		close(done)
	}()
	time.Sleep(3 * faultRetry)
	select {
	case <-done:
		t.Fatal("a fault on a page of a dead sub-host completed")
	default:
	}
	ft.down.Store(false)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fault not retried after the sub-host came back")
	}
	if !bytes.Equal(got, img.page(remote[1])) {
		t.Fatal("page read after the retry differs from the image")
	}
	checkAllPages(t, rt, img)
}
