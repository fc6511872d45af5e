//go:build linux

package kvmhost

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
)

// checkAllPages reads every backed page through the mapping (faulting the
// remote ones in) and compares it with the image.
func checkAllPages(t *testing.T, rt *Runtime, img *sliceImage) {
	t.Helper()
	var bad []fabric.GFN
	onGuestThread(t, func() {
		buf := make([]byte, fabric.PageSize)
		for _, g := range rt.backed {
			rt.readGuest(g, buf)
			if !bytes.Equal(buf, img.page(g)) {
				bad = append(bad, g)
			}
		}
	})
	if len(bad) > 0 {
		t.Fatalf("%d pages differ from the image, first gfn %#x", len(bad), uint64(bad[0]))
	}
}

func TestSplitAndFaultInMem(t *testing.T) {
	img := testImage(300, 20, 200)
	subs := memSubhosts(img.layout, 2)
	rt := newTestRuntime(t, img, subs, 25, WorkloadConfig{})
	st := rt.Stats()
	if st.BackedPages != 500 || st.ResidentLimit != 125 || st.ResidentPages > 125 || st.RemotePages != 500-st.ResidentPages {
		t.Fatalf("after split: %+v", st)
	}
	// Every remote page sits in the slot its word names, spread over both sub-hosts.
	per := map[uint8]int{}
	for _, g := range rt.backed {
		w := rt.locs.Load(g)
		if w.State() != fabric.StateRemote {
			continue
		}
		per[w.SubHost()]++
		slot := make([]byte, fabric.PageSize)
		if err := subs[w.SubHost()].ReadSlots(context.Background(), []fabric.SlotIO{{Slot: w.Slot(), Buf: slot}}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(slot, img.page(g)) || w.Gen() != 1 {
			t.Fatalf("gfn %#x: word %v, slot content matches: %v", uint64(g), w, bytes.Equal(slot, img.page(g)))
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Fatalf("remote pages not spread: %v", per)
	}
	checkAllPages(t, rt, img)
	st = rt.Stats()
	if st.ResidentPages > st.ResidentLimit || st.PageIns < 375 || st.PageOuts == 0 || st.Faults < 375 {
		t.Fatalf("after reading everything: %+v", st)
	}
	// Twice: pages that went out while the first pass read on come back right.
	checkAllPages(t, rt, img)
}

func TestHoleIsNotBacked(t *testing.T) {
	img := testImage(64, 16, 64)
	rt := newTestRuntime(t, img, memSubhosts(img.layout, 1), 50, WorkloadConfig{})
	errs := rt.MakeResident(context.Background(), []fabric.GFN{70, 0})
	if !errors.Is(errs[0], ErrNotBacked) || errs[1] != nil {
		t.Fatalf("errs %v", errs)
	}
}

// TestEvictionFence hammers pages with stamps while a tiny resident limit
// evicts them over and over, then checks that the last stamp of every page
// survived: page-out never loses a concurrent write.
func TestEvictionFence(t *testing.T) {
	img := testImage(96, 0, 32)
	// A slow sub-host widens the window in which writers hit fenced pages.
	subs := []fabric.Transport{
		fabrictest.NewMemTransport(SlotsNeeded(img.layout, 2), 50*time.Microsecond),
		fabrictest.NewMemTransport(SlotsNeeded(img.layout, 2), 50*time.Microsecond),
	}
	rt := newTestRuntime(t, img, subs, 8, WorkloadConfig{}) // limit 10 pages
	const writers = 2
	if runtime.GOMAXPROCS(0) < writers+4 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(writers + 4))
	}
	var last [writers][]uint64 // per writer, last seq stamped into each of its pages
	var stop atomic.Bool
	var wg sync.WaitGroup
	pagesOf := func(w int) []fabric.GFN {
		var gs []fabric.GFN
		for g := w; g < 8; g += writers {
			gs = append(gs, fabric.GFN(g))
		}
		return gs
	}
	for w := range writers {
		gs := pagesOf(w)
		last[w] = make([]uint64, len(gs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for seq := uint64(1); !stop.Load(); seq++ {
				i := int(seq) % len(gs)
				rt.stampPage(gs[i], seq)
				last[w][i] = seq
			}
		}()
	}
	// The evictor pushes the written pages out again and again (the writers
	// fault them back in), and pages other frames in, so the clock evicts too.
	ctx := context.Background()
	var written []fabric.GFN
	for w := range writers {
		written = append(written, pagesOf(w)...)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		rt.evictNow(written)
		g := fabric.GFN(8 + i%120)
		for _, err := range rt.MakeResident(ctx, []fabric.GFN{g}) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	st := rt.Stats()
	t.Logf("stats %+v", st)
	lost := 0
	onGuestThread(t, func() {
		buf := make([]byte, fabric.PageSize)
		for w := range writers {
			for i, g := range pagesOf(w) {
				rt.readGuest(g, buf)
				if !VerifyStamp(g, buf) || StampSeq(buf) != last[w][i] {
					lost++
					t.Errorf("gfn %d: stamp seq %d (verifies %v), last written %d", g, StampSeq(buf), VerifyStamp(g, buf), last[w][i])
				}
			}
		}
	})
	if lost > 0 {
		t.Fatalf("%d pages lost their last write", lost)
	}
	if st.PageOuts < 200 || st.WPFaults < 5 {
		t.Fatalf("too little eviction under the writers to prove anything: %+v", st)
	}
}

func TestMakeResidentBelowLimit(t *testing.T) {
	img := testImage(400, 0, 0)
	rt := newTestRuntime(t, img, memSubhosts(img.layout, 2), 50, WorkloadConfig{})
	ctx := context.Background()
	remote := func() []fabric.GFN {
		var gs []fabric.GFN
		for _, g := range rt.backed {
			if rt.locs.Load(g).State() == fabric.StateRemote {
				gs = append(gs, g)
			}
		}
		return gs
	}
	// One page-in at the limit evicts a batch, leaving room below it.
	for _, err := range rt.MakeResident(ctx, remote()[:1]) {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := rt.Stats()
	room := st.ResidentLimit - st.ResidentPages
	if room < 5 {
		t.Fatalf("no room below the limit after an eviction: %+v", st)
	}
	want := remote()[:5]
	before := rt.Stats()
	for i, err := range rt.MakeResident(ctx, append(want, want[0])) { // a duplicate counts once
		if err != nil {
			t.Fatalf("gfn %d: %v", i, err)
		}
	}
	after := rt.Stats()
	if after.ResidentPages != before.ResidentPages+5 || after.PageOuts != before.PageOuts {
		t.Fatalf("resident %d -> %d, page-outs %d -> %d; want +5 and no eviction",
			before.ResidentPages, after.ResidentPages, before.PageOuts, after.PageOuts)
	}
	if after.ExchangeRequests != before.ExchangeRequests+1 || after.ExchangedPages != before.ExchangedPages+5 {
		t.Fatalf("exchange counters %+v -> %+v", before, after)
	}
	for _, g := range want {
		if w := rt.locs.Load(g); w.State() != fabric.StateLocal {
			t.Fatalf("gfn %d is %v after MakeResident", g, w)
		}
	}
	checkAllPages(t, rt, img)
}

func TestGenerationBumpsOnEveryMove(t *testing.T) {
	img := testImage(200, 0, 0)
	rt := newTestRuntime(t, img, memSubhosts(img.layout, 2), 10, WorkloadConfig{})
	ctx := context.Background()
	var g fabric.GFN
	for _, x := range rt.backed {
		if rt.locs.Load(x).State() == fabric.StateRemote {
			g = x
			break
		}
	}
	w := rt.locs.Load(g)
	for round := range 5 {
		if err := rt.MakeResident(ctx, []fabric.GFN{g})[0]; err != nil {
			t.Fatal(err)
		}
		in := rt.locs.Load(g)
		if in.State() != fabric.StateLocal || in.Gen() != fabric.NextGen(w.Gen()) {
			t.Fatalf("round %d: page-in %v -> %v, want local, the next generation", round, w, in)
		}
		// Page everything else in until g goes out.
		for _, x := range rt.backed {
			if rt.locs.Load(g).State() == fabric.StateRemote {
				break
			}
			if x != g {
				rt.MakeResident(ctx, []fabric.GFN{x})
			}
		}
		out := rt.locs.Load(g)
		if out.State() != fabric.StateRemote || out.Gen() != fabric.NextGen(in.Gen()) {
			t.Fatalf("round %d: page-out %v -> %v, want remote, the next generation", round, in, out)
		}
		w = out
	}
}

// TestClockSparesAccessedPages: pages a vCPU touched since the hand last
// passed get a second chance; untouched ones go first.
func TestClockSparesAccessedPages(t *testing.T) {
	img := testImage(1024, 0, 0)
	rt := newTestRuntime(t, img, memSubhosts(img.layout, 2), 25, WorkloadConfig{})
	local := rt.framesIn(fabric.StateLocal, 1024)
	hot := local[:len(local)/2]
	for _, g := range hot {
		rt.accessed[g] = 1 // as a vCPU's touch would
	}
	before := rt.Stats().PageOuts
	remote := rt.framesIn(fabric.StateRemote, 64)
	for _, err := range rt.MakeResident(context.Background(), remote) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if rt.Stats().PageOuts == before {
		t.Fatal("no eviction happened")
	}
	for _, g := range hot {
		if rt.locs.Load(g).State() != fabric.StateLocal {
			t.Fatalf("accessed gfn %d was evicted while untouched pages remained", g)
		}
	}
}

// TestZeroPagesStayHoles splits an image of which some pages are all zeros:
// those go nowhere (no slot, no memory here), the resident share counts
// only the pages with content, and a zero page faults in as zeros, becomes
// resident and is evicted and brought back like any other.
func TestZeroPagesStayHoles(t *testing.T) {
	img := testImage(200, 0, 0)
	zero := map[fabric.GFN]bool{}
	for g := fabric.GFN(0); g < 200; g += 3 {
		clear(img.page(g))
		zero[g] = true
	}
	subs := memSubhosts(img.layout, 1)
	rt := newTestRuntime(t, img, subs, 25, WorkloadConfig{})
	st := rt.Stats()
	data := uint64(200 - len(zero))
	if st.EmptyPages != uint64(len(zero)) || st.ResidentLimit != data/4 || st.ResidentPages > st.ResidentLimit ||
		st.RemotePages != data-st.ResidentPages {
		t.Fatalf("after split: %+v (want %d empty, limit %d)", st, len(zero), data/4)
	}
	for g := range zero {
		if w := rt.locs.Load(g); w.State() != fabric.StateLocal || w.Gen() != 0 {
			t.Fatalf("zero gfn %#x: word %v", uint64(g), w)
		}
	}
	// MakeResident of a never-written frame succeeds at once: it is local.
	if errs := rt.MakeResident(context.Background(), []fabric.GFN{0, 3}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("make resident of zero pages: %v", errs)
	}
	checkAllPages(t, rt, img)
	st = rt.Stats()
	if st.ZeroFills < uint64(len(zero)) || st.ResidentPages > st.ResidentLimit || st.PageOuts == 0 {
		t.Fatalf("after reading everything: %+v", st)
	}
	checkAllPages(t, rt, img) // zero pages that went out come back as zeros
}
