//go:build linux

package fabric_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

var methods = []fabric.Method{fabric.MethodProxy, fabric.MethodSelf, fabric.MethodAdaptive}

func methodConfig(vm *fakeVM, method fabric.Method) fabric.MemoryConfig {
	cfg := fabric.MemoryConfig{Method: method}
	if method == fabric.MethodSelf {
		cfg.Exchanger = vm
	}
	return cfg
}

// scatter pages out every other frame, alternating sub-hosts.
func scatter(t testing.TB, vm *fakeVM, every int) {
	t.Helper()
	for g := uint64(0); g < vm.pages(); g++ {
		if g%uint64(every) == 1 {
			if err := vm.pageOut(fabric.GFN(g), uint8(g/uint64(every))%uint8(len(vm.subs))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestMemoryConformance(t *testing.T) {
	for _, method := range methods {
		t.Run(method.String(), func(t *testing.T) {
			physmemtest.Run(t, func(t testing.TB, content []byte) physmem.Reader {
				vm := newFakeVM(t, content, 2, 256)
				scatter(t, vm, 2)
				m := vm.memory(t, methodConfig(vm, method))
				t.Logf("local reads by %s", m.LocalMode())
				return m
			})
		})
	}
}

func TestMemoryPreadFallback(t *testing.T) {
	defer fabric.ForcePread()()
	t.Run("Conformance", func(t *testing.T) {
		physmemtest.Run(t, func(t testing.TB, content []byte) physmem.Reader {
			vm := newFakeVM(t, content, 1, 256)
			scatter(t, vm, 2)
			m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
			if !strings.HasPrefix(m.LocalMode(), "pread") {
				t.Fatalf("local mode %q", m.LocalMode())
			}
			return m
		})
	})
	t.Run("Churn", func(t *testing.T) { churn(t, fabric.MethodProxy) })
}

func TestMemoryLayoutHoles(t *testing.T) {
	content := stampedContent(64)
	vm := newFakeVM(t, content, 1, 64)
	scatter(t, vm, 3)
	m := vm.memory(t, fabric.MemoryConfig{Layout: []fabric.PhysRange{
		{Start: 32 << 12, End: 64 << 12}, {Start: 0, End: 16 << 12}, {Start: 16 << 12, End: 24 << 12},
	}})
	if m.Size() != 64<<12 {
		t.Fatalf("Size %#x", m.Size())
	}
	batch := []physmem.Range{
		{Addr: 0, Buf: make([]byte, 24<<12)},         // two touching ranges, merged
		{Addr: 24 << 12, Buf: make([]byte, 8)},       // the hole
		{Addr: 31<<12 + 4090, Buf: make([]byte, 10)}, // from the hole into RAM
		{Addr: 32 << 12, Buf: make([]byte, 32<<12)},
	}
	err := m.ReadPhys(batch)
	if !errors.Is(err, physmem.ErrPartial) || errors.Is(err, fabric.ErrPartial) {
		t.Fatalf("batch error %v: want physmem.ErrPartial only (no fabric failure)", err)
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(batch[i].Err, physmem.ErrOutOfRange) {
			t.Errorf("range %d: %v, want ErrOutOfRange", i, batch[i].Err)
		}
	}
	for _, i := range []int{0, 3} {
		if batch[i].Err != nil || !bytes.Equal(batch[i].Buf, content[batch[i].Addr:batch[i].Addr+uint64(len(batch[i].Buf))]) {
			t.Errorf("range %d: %v or wrong bytes", i, batch[i].Err)
		}
	}
}

func TestNewMemoryRejects(t *testing.T) {
	vm := newFakeVM(t, stampedContent(8), 1, 8)
	for name, cfg := range map[string]fabric.MemoryConfig{
		"empty layout": {Layout: []fabric.PhysRange{}},
		"empty range":  {Layout: []fabric.PhysRange{{Start: 4096, End: 4096}}},
		"beyond map":   {Layout: []fabric.PhysRange{{Start: 0, End: 9 << 12}}},
		"self without": {Method: fabric.MethodSelf},
		"unknown":      {Method: fabric.Method(7)},
	} {
		cfg.RAM, cfg.Locations, cfg.Subhosts = vm.ro, vm.locs, vm.trs
		if cfg.Layout == nil {
			cfg.Layout = []fabric.PhysRange{{Start: 0, End: 8 << 12}}
		}
		if _, err := fabric.NewMemory(cfg); err == nil {
			t.Errorf("%s: NewMemory accepted it", name)
		}
	}
}

func TestParseMethod(t *testing.T) {
	for _, m := range methods {
		got, err := fabric.ParseMethod(strings.ToUpper(m.String()))
		if err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := fabric.ParseMethod("rdma"); !errors.Is(err, fabric.ErrBadMethod) {
		t.Errorf("ParseMethod(rdma): %v", err)
	}
}

// TestMemoryBatchesPerSubhost checks that all remote pages of a call go in
// one transport batch per sub-host, and that a page asked for twice is
// fetched once.
func TestMemoryBatchesPerSubhost(t *testing.T) {
	content := stampedContent(128)
	vm := newFakeVM(t, content, 2, 128)
	scatter(t, vm, 2)
	counting := map[uint8]fabric.Transport{}
	var calls [2]atomic.Int64
	for id, tr := range vm.trs {
		counting[id] = countingTransport{Transport: tr, calls: &calls[id]}
	}
	vm.trs = counting
	m := vm.memory(t, fabric.MemoryConfig{})
	var batch []physmem.Range
	for g := range 128 {
		batch = append(batch, physmem.Range{Addr: uint64(g) << 12, Buf: make([]byte, 4096)})
		batch = append(batch, physmem.Range{Addr: uint64(g)<<12 + 100, Buf: make([]byte, 16)})
	}
	if err := m.ReadPhys(batch); err != nil {
		t.Fatal(err)
	}
	for _, rg := range batch {
		if !bytes.Equal(rg.Buf, content[rg.Addr:rg.Addr+uint64(len(rg.Buf))]) {
			t.Fatalf("range %#x+%d: wrong bytes", rg.Addr, len(rg.Buf))
		}
	}
	if calls[0].Load() != 1 || calls[1].Load() != 1 {
		t.Errorf("transport batches per sub-host: %d, %d; want 1 each", calls[0].Load(), calls[1].Load())
	}
	if s := m.Stats(); s.RemotePagesFetched != 64 || s.LocalPages != 128 {
		t.Errorf("stats %+v: want 64 remote pages fetched, 128 local page reads", s)
	}
}

type countingTransport struct {
	fabric.Transport
	calls *atomic.Int64
}

func (c countingTransport) ReadSlots(ctx context.Context, b []fabric.SlotIO) error {
	c.calls.Add(1)
	return c.Transport.ReadSlots(ctx, b)
}

func TestMemoryDeadSubhost(t *testing.T) {
	for _, method := range []fabric.Method{fabric.MethodProxy, fabric.MethodAdaptive} {
		t.Run(method.String(), func(t *testing.T) {
			content := stampedContent(32)
			vm := newFakeVM(t, content, 2, 32)
			scatter(t, vm, 2) // odd frames remote, on sub-hosts 0 and 1 by turns of two
			m := vm.memory(t, fabric.MemoryConfig{Method: method, Timeout: time.Second})
			vm.subs[1].Kill()
			batch := make([]physmem.Range, 32)
			for g := range batch {
				batch[g] = physmem.Range{Addr: uint64(g) << 12, Buf: make([]byte, 4096)}
			}
			start := time.Now()
			err := m.ReadPhys(batch)
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("dead sub-host took %v", d)
			}
			if !errors.Is(err, physmem.ErrPartial) || !errors.Is(err, fabric.ErrPartial) {
				t.Fatalf("batch error %v, want physmem.ErrPartial and fabric.ErrPartial", err)
			}
			for g, rg := range batch {
				w := vm.locs.Load(fabric.GFN(g))
				dead := w.State() == fabric.StateRemote && w.SubHost() == 1
				switch {
				case dead && !errors.Is(rg.Err, fabric.ErrPeer):
					t.Errorf("frame %d on the dead sub-host: %v, want ErrPeer", g, rg.Err)
				case !dead && rg.Err != nil:
					t.Errorf("frame %d (%v): %v", g, w, rg.Err)
				case !dead && !bytes.Equal(rg.Buf, content[g<<12:(g+1)<<12]):
					t.Errorf("frame %d: wrong bytes", g)
				}
			}
		})
	}
}

func TestMemorySlowSubhost(t *testing.T) {
	content := stampedContent(16)
	vm := newFakeVM(t, content, 1, 16)
	slow := fabrictest.NewMemTransport(16, time.Hour)
	m := vm.memory(t, fabric.MemoryConfig{Timeout: 100 * time.Millisecond, Subhosts: map[uint8]fabric.Transport{0: slow}})
	if err := vm.pageOut(3, 0); err != nil {
		t.Fatal(err)
	}
	batch := []physmem.Range{{Addr: 2 << 12, Buf: make([]byte, 8192)}, {Addr: 4 << 12, Buf: make([]byte, 10)}}
	start := time.Now()
	err := m.ReadPhys(batch)
	if d := time.Since(start); d > time.Second {
		t.Errorf("slow sub-host took %v with a 100ms timeout", d)
	}
	if !errors.Is(err, physmem.ErrPartial) || !errors.Is(batch[0].Err, context.DeadlineExceeded) || batch[1].Err != nil {
		t.Fatalf("batch %v, ranges %v / %v: want a deadline on the first range only", err, batch[0].Err, batch[1].Err)
	}
}

func TestMemoryNoTransportForSubhost(t *testing.T) {
	vm := newFakeVM(t, stampedContent(4), 2, 4)
	if err := vm.pageOut(1, 1); err != nil {
		t.Fatal(err)
	}
	delete(vm.trs, 1)
	m := vm.memory(t, fabric.MemoryConfig{})
	batch := []physmem.Range{{Addr: 4096, Buf: make([]byte, 4096)}}
	if err := m.ReadPhys(batch); !errors.Is(err, physmem.ErrPartial) || !errors.Is(batch[0].Err, fabric.ErrNoSubhost) {
		t.Fatalf("batch %v, range %v: want ErrNoSubhost", err, batch[0].Err)
	}
}

func readAll(t *testing.T, m *fabric.Memory, pages int) []byte {
	t.Helper()
	buf := make([]byte, pages<<12)
	if err := m.ReadPhys([]physmem.Range{{Addr: 0, Buf: buf}}); err != nil {
		t.Fatal(err)
	}
	return buf
}

func TestMemoryAdaptiveHits(t *testing.T) {
	content := stampedContent(64)
	vm := newFakeVM(t, content, 2, 64)
	scatter(t, vm, 2)
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
	if !bytes.Equal(readAll(t, m, 64), content) {
		t.Fatal("first pass: wrong bytes")
	}
	first := m.Stats()
	if !bytes.Equal(readAll(t, m, 64), content) {
		t.Fatal("second pass: wrong bytes")
	}
	s := m.Stats()
	if s.RemotePagesFetched != first.RemotePagesFetched || s.CacheHits-first.CacheHits != 32 {
		t.Errorf("second pass fetched %d pages, hit %d: want 0 and 32", s.RemotePagesFetched-first.RemotePagesFetched, s.CacheHits-first.CacheHits)
	}
	// A page that moved is fetched again, never served from the old copy.
	g := fabric.GFN(1)
	page := make([]byte, 4096)
	stampPage(page, g, 7)
	if err := vm.pageIn(g, page); err != nil {
		t.Fatal(err)
	}
	if err := vm.pageOut(g, 0); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096)
	if err := m.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: got}}); err != nil || !bytes.Equal(got, page) {
		t.Fatalf("moved page: %v, new content %v", err, bytes.Equal(got, page))
	}
}

func TestMemoryCacheBounded(t *testing.T) {
	content := stampedContent(256)
	vm := newFakeVM(t, content, 1, 256)
	scatter(t, vm, 1) // every frame... every%1==1 never: page all out
	for g := range 256 {
		if err := vm.pageOut(fabric.GFN(g), 0); err != nil {
			t.Fatal(err)
		}
	}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive, CacheBytes: 16 << 12})
	rng := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		var batch []physmem.Range
		for range 20 {
			a := rng.Uint64N(256<<12 - 100)
			batch = append(batch, physmem.Range{Addr: a, Buf: make([]byte, 100)})
		}
		if err := m.ReadPhys(batch); err != nil {
			t.Fatal(err)
		}
		for _, rg := range batch {
			if !bytes.Equal(rg.Buf, content[rg.Addr:rg.Addr+100]) {
				t.Fatalf("range %#x: wrong bytes", rg.Addr)
			}
		}
		if n := fabric.CacheLen(m); n > 16 {
			t.Fatalf("cache holds %d pages, bound 16", n)
		}
	}
	if s := m.Stats(); s.CacheEvictions == 0 || s.CacheHits == 0 {
		t.Errorf("stats %+v: want evictions and hits", s)
	}
}

// TestMemoryCacheGenerationWrap moves one page through every generation
// back to the very same location word, with new content, and checks that
// the cache does not serve the old copy.
func TestMemoryCacheGenerationWrap(t *testing.T) {
	content := stampedContent(4)
	vm := newFakeVM(t, content, 1, 4)
	g := fabric.GFN(2)
	if err := vm.pageOut(g, 0); err != nil {
		t.Fatal(err)
	}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
	w0 := vm.locs.Load(g)
	got := make([]byte, 4096)
	read := func() {
		t.Helper()
		if err := m.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: got}}); err != nil {
			t.Fatal(err)
		}
	}
	read()
	read()
	if s := m.Stats(); s.CacheHits != 1 {
		t.Fatalf("stats %+v: the second read should hit", s)
	}
	fresh := make([]byte, 4096)
	stampPage(fresh, g, 1)
	start := time.Now()
	for cycle := 0; ; cycle++ {
		var c []byte
		if cycle == 0 {
			c = fresh
		}
		if err := vm.pageIn(g, c); err != nil {
			t.Fatal(err)
		}
		if err := vm.pageOut(g, 0); err != nil {
			t.Fatal(err)
		}
		if vm.locs.Load(g) == w0 {
			break
		}
	}
	t.Logf("word %v again after %d moves in %v", w0, vm.moves, time.Since(start))
	if vm.moves < 1<<16 {
		t.Fatalf("word came back after only %d moves", vm.moves)
	}
	read()
	if !bytes.Equal(got, fresh) {
		t.Fatal("stale hit: the cache served the copy of the previous wrap")
	}
}

func TestMemoryCacheSweepKillsChangedEntry(t *testing.T) {
	content := stampedContent(4)
	vm := newFakeVM(t, content, 1, 4)
	g := fabric.GFN(1)
	if err := vm.pageOut(g, 0); err != nil {
		t.Fatal(err)
	}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
	got := make([]byte, 4096)
	if err := m.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: got}}); err != nil {
		t.Fatal(err)
	}
	w := vm.locs.Load(g)
	// The word changes and comes back (as a wrap would) while only the
	// sweeper looks: the entry must be dead for good.
	if err := vm.locs.Store(g, w.ToMoving()); err != nil {
		t.Fatal(err)
	}
	fabric.SweepCache(m)
	if err := vm.locs.Store(g, w); err != nil {
		t.Fatal(err)
	}
	fabric.SweepCache(m)
	before := m.Stats()
	if err := m.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: got}}); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.CacheHits != before.CacheHits || s.RemotePagesFetched != before.RemotePagesFetched+1 {
		t.Errorf("read after the word changed and came back: %+v, want a miss and a fetch", s)
	}
	// While the Memory is in use the sweeper keeps observing the word, so
	// the entry outlives the trust window.
	time.Sleep(3 * fabric.CacheTrust)
	before = m.Stats()
	if err := m.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: got}}); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.CacheHits != before.CacheHits+1 {
		t.Errorf("read after %v: %+v, want a hit kept fresh by the sweeper", 3*fabric.CacheTrust, s)
	}
}

func TestMemorySelf(t *testing.T) {
	content := stampedContent(64)
	vm := newFakeVM(t, content, 2, 64)
	scatter(t, vm, 2)
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodSelf, Exchanger: vm})
	if !bytes.Equal(readAll(t, m, 64), content) {
		t.Fatal("wrong bytes")
	}
	s := m.Stats()
	if s.PagesExchanged != 32 || s.RemotePagesFetched != 0 || s.LocalPages != 64 {
		t.Errorf("stats %+v: want 32 exchanged, 0 fetched, 64 local reads", s)
	}
	for g := range fabric.GFN(64) {
		if w := vm.locs.Load(g); w.State() != fabric.StateLocal {
			t.Errorf("frame %d still %v after self paging", g, w)
		}
	}
}

type failingExchanger struct{ calls atomic.Int64 }

func (f *failingExchanger) MakeResident(_ context.Context, gfns []fabric.GFN) []error {
	f.calls.Add(1)
	errs := make([]error, len(gfns))
	for i := range errs {
		errs[i] = errors.New("agent does not answer")
	}
	return errs
}

func TestMemorySelfFallsBackToProxy(t *testing.T) {
	content := stampedContent(16)
	vm := newFakeVM(t, content, 1, 16)
	scatter(t, vm, 2)
	ex := &failingExchanger{}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodSelf, Exchanger: ex})
	if !bytes.Equal(readAll(t, m, 16), content) {
		t.Fatal("wrong bytes")
	}
	if s := m.Stats(); ex.calls.Load() != 1 || s.ExchangeFallbacks != 8 || s.RemotePagesFetched != 8 {
		t.Errorf("calls %d, stats %+v: want one request, 8 fallbacks fetched by proxy", ex.calls.Load(), s)
	}
}

// TestMemoryChurn reads while a mover pages frames out and in (rewriting
// some on the way in), and checks that every page read is whole and of
// the right frame.
func TestMemoryChurn(t *testing.T) {
	for _, method := range methods {
		t.Run(method.String(), func(t *testing.T) { churn(t, method) })
	}
}

func churn(t *testing.T, method fabric.Method) {
	const pages = 256
	vm := newFakeVM(t, stampedContent(pages), 2, pages)
	scatter(t, vm, 2)
	m := vm.memory(t, methodConfig(vm, method))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		page := make([]byte, 4096)
		for v := uint64(1); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			g := fabric.GFN(rng.IntN(pages))
			var err error
			if vm.locs.Load(g).State() == fabric.StateLocal {
				err = vm.pageOut(g, uint8(rng.IntN(2)))
			} else {
				stampPage(page, g, v)
				err = vm.pageIn(g, page)
			}
			if err != nil && !strings.Contains(err.Error(), "page ") {
				t.Error(err)
				return
			}
		}
	})
	var reads, bad atomic.Int64
	deadline := time.Now().Add(time.Second)
	for r := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for time.Now().Before(deadline) {
				batch := make([]physmem.Range, 16)
				for i := range batch {
					n := 1 + rng.IntN(3)
					batch[i] = physmem.Range{Addr: uint64(rng.IntN(pages-n+1)) << 12, Buf: make([]byte, n<<12)}
				}
				if err := m.ReadPhys(batch); err != nil {
					for _, rg := range batch {
						if rg.Err != nil {
							t.Error(rg.Err)
						}
					}
					return
				}
				for _, rg := range batch {
					for off := 0; off < len(rg.Buf); off += 4096 {
						reads.Add(1)
						if err := checkPage(rg.Buf[off:off+4096], fabric.GFNOf(rg.Addr+uint64(off))); err != nil {
							bad.Add(1)
						}
					}
				}
			}
		})
	}
	var lent, lentBad atomic.Int64
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(11, 3))
		for time.Now().Before(deadline) {
			n := 1 + rng.IntN(64)
			addr := uint64(rng.IntN(pages-n+1)) << 12
			got, bad, err := lendChecked(m, addr, uint64(n)<<12)
			if err != nil {
				t.Error(err)
				return
			}
			lent.Add(int64(got))
			lentBad.Add(int64(bad))
		}
	})
	time.Sleep(time.Until(deadline))
	close(stop)
	wg.Wait()
	s := m.Stats()
	t.Logf("reads=%d mismatches=%d lent=%d lent-mismatches=%d moves=%d stats=%+v", reads.Load(), bad.Load(), lent.Load(), lentBad.Load(), vm.moves, s)
	if lentBad.Load() != 0 || lent.Load() == 0 {
		t.Fatalf("%d of %d pages lent inconsistent", lentBad.Load(), lent.Load())
	}
	if bad.Load() != 0 || reads.Load() == 0 {
		t.Fatalf("%d of %d page reads inconsistent", bad.Load(), reads.Load())
	}
}

// lendChecked lends [addr, addr+n) (whole pages) and checks every page
// shown, a retried segment replacing the checks of the one before it.
func lendChecked(m *fabric.Memory, addr, n uint64) (pages, bad int, err error) {
	var lastPages, lastBad int
	var segErr error
	err = m.LendPhys(addr, n, func(s physmem.Segment) bool {
		if s.Retry {
			pages, bad = pages-lastPages, bad-lastBad
		}
		lastPages, lastBad = 0, 0
		if s.Err != nil {
			segErr = s.Err
			return false
		}
		// counted only once the whole segment was seen: a fault may cut
		// this visit short, and the retry then forgets only what counted
		var p, b int
		for off := uint64(0); off < s.Len; off += 4096 {
			p++
			if checkPage(s.Data[off:off+4096], fabric.GFNOf(s.Addr+off)) != nil {
				b++
			}
		}
		lastPages, lastBad = p, b
		pages, bad = pages+p, bad+b
		return true
	})
	if segErr != nil {
		return pages, bad, segErr
	}
	if err == nil && uint64(pages) != n/4096 {
		err = fmt.Errorf("lend %#x+%d: %d pages checked, want %d (a segment cut short was not shown again)", addr, n, pages, n/4096)
	}
	return pages, bad, err
}

// requireView fails unless m reads local pages through the SIGBUS view,
// skipping only where userfaultfd is not available to this process.
func requireView(t *testing.T, m *fabric.Memory) {
	t.Helper()
	mode := m.LocalMode()
	if mode == "sigbus-view" {
		return
	}
	if strings.Contains(mode, "userfaultfd not available") {
		t.Skipf("local reads fell back to %s: run as root or with sysctl vm.unprivileged_userfaultfd=1", mode)
	}
	t.Fatalf("local reads by %s, want the sigbus view", mode)
}

// TestMemoryViewHole reads a page whose word says local while guest RAM
// holds a hole (a frame never written): the view faults, the fault is
// recovered, the page reads as zeros, and nothing is allocated in the
// memfd. NextData skips the hole.
func TestMemoryViewHole(t *testing.T) {
	content := stampedContent(16)
	vm := newFakeVM(t, content, 1, 16)
	m := vm.memory(t, fabric.MemoryConfig{})
	requireView(t, m)
	vm.punch(5)
	blocks := vm.stBlocks()
	batch := []physmem.Range{
		{Addr: 4 << 12, Buf: make([]byte, 3<<12)}, // a run across the hole
		{Addr: 5<<12 + 100, Buf: make([]byte, 8)},
		{Addr: 7 << 12, Buf: make([]byte, 4096)},
	}
	for i := range batch {
		for k := range batch[i].Buf {
			batch[i].Buf[k] = 0xa5
		}
	}
	if err := m.ReadPhys(batch); err != nil {
		t.Fatalf("batch error %v", err)
	}
	want := slices.Clone(content[4<<12 : 7<<12])
	clear(want[1<<12 : 2<<12])
	if !bytes.Equal(batch[0].Buf, want) {
		t.Errorf("run across the hole: the hole does not read as zeros between its neighbours")
	}
	if !bytes.Equal(batch[1].Buf, make([]byte, 8)) {
		t.Errorf("range inside the hole: % x, want zeros", batch[1].Buf)
	}
	if !bytes.Equal(batch[2].Buf, content[7<<12:8<<12]) {
		t.Errorf("range beside the hole differs")
	}
	if after := vm.stBlocks(); after != blocks {
		t.Errorf("memfd blocks %d -> %d: the read allocated the hole", blocks, after)
	}
	if s := m.Stats(); s.LocalFaults == 0 {
		t.Errorf("stats %+v: no fault recorded", s)
	}
	if s, e, ok := m.NextData(4 << 12); !ok || s != 4<<12 || e != 5<<12 {
		t.Errorf("NextData(4 pages) = %#x, %#x, %v; want the page before the hole", s, e, ok)
	}
	if s, _, ok := m.NextData(5 << 12); !ok || s != 6<<12 {
		t.Errorf("NextData(5 pages) = %#x, %v; want the page after the hole", s, ok)
	}
	// The page comes back (as a fault would fill it): its content reads again.
	if _, err := vm.ram.WriteAt(content[5<<12:6<<12], 5<<12); err != nil {
		t.Fatal(err)
	}
	if err := m.ReadPhys(batch[:1]); err != nil || !bytes.Equal(batch[0].Buf, content[4<<12:7<<12]) {
		t.Fatalf("after refill: %v", err)
	}
}

// TestMemoryViewFollowsEviction checks that a page read through the view,
// then paged out (punched), faults instead of returning the old mapping's
// data, and that the read goes to the sub-host.
func TestMemoryViewFollowsEviction(t *testing.T) {
	content := stampedContent(8)
	vm := newFakeVM(t, content, 1, 8)
	m := vm.memory(t, fabric.MemoryConfig{})
	requireView(t, m)
	readAll(t, m, 8)
	page := make([]byte, 4096)
	stampPage(page, 3, 9)
	if err := vm.pageOut(3, 0); err != nil {
		t.Fatal(err)
	}
	blocks := vm.stBlocks()
	if got := readAll(t, m, 8); !bytes.Equal(got, content) {
		t.Fatal("after page-out: wrong bytes")
	}
	if err := vm.pageIn(3, page); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, m, 8); !bytes.Equal(got[3<<12:4<<12], page) {
		t.Fatal("after page-in with new content: stale bytes")
	}
	if after := vm.stBlocks(); after != blocks+8 {
		t.Errorf("memfd blocks %d -> %d, want one page more (the page-in)", blocks, after)
	}
}

// TestMemoryLongMove reads a frame held moving longer than the read
// protocol's retries last: the read waits it out within the timeout, and
// fails with ErrUnstable only once the timeout has passed.
func TestMemoryLongMove(t *testing.T) {
	content := stampedContent(4)
	vm := newFakeVM(t, content, 1, 4)
	m := vm.memory(t, fabric.MemoryConfig{Timeout: 2 * time.Second})
	g := fabric.GFN(2)
	w := vm.locs.Load(g)
	if err := vm.locs.Store(g, w.ToMoving()); err != nil {
		t.Fatal(err)
	}
	// The location map lives outside the Go heap, where the race detector
	// sees no order from its atomics: the channel gives it one.
	moved := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { vm.locs.Store(g, w.ToMoving().ToLocal()); close(moved) })
	got := make([]byte, 4096)
	if err := m.ReadPhys([]physmem.Range{{Addr: g.Addr(), Buf: got}}); err != nil || !bytes.Equal(got, content[2<<12:3<<12]) {
		t.Fatalf("read across a 300ms move: %v", err)
	}
	<-moved

	short := vm.memory(t, fabric.MemoryConfig{Timeout: 100 * time.Millisecond})
	if err := vm.locs.Store(g, vm.locs.Load(g).ToMoving()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	batch := []physmem.Range{{Addr: g.Addr(), Buf: got}, {Addr: 0, Buf: make([]byte, 10)}}
	err := short.ReadPhys(batch)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a frame moving for good took %v with a 100ms timeout", d)
	}
	if !errors.Is(err, physmem.ErrPartial) || !errors.Is(batch[0].Err, fabric.ErrUnstable) || batch[1].Err != nil {
		t.Fatalf("batch %v, ranges %v / %v: want ErrUnstable for the moving frame only", err, batch[0].Err, batch[1].Err)
	}
}

// TestMemoryNextDataSkipsNeverWritten checks that NextData yields every
// frame with content, local or remote, and skips only local holes.
func TestMemoryNextDataSkipsNeverWritten(t *testing.T) {
	content := stampedContent(32)
	vm := newFakeVM(t, content, 1, 32)
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodProxy})
	for _, g := range []fabric.GFN{3, 4, 10, 11, 12, 30} { // never written
		vm.punch(g)
	}
	for _, g := range []fabric.GFN{5, 6, 20, 31} { // remote: holes here too
		if err := vm.pageOut(g, 0); err != nil {
			t.Fatal(err)
		}
	}
	var got [][2]uint64
	for a := uint64(0); ; {
		s, e, ok := m.NextData(a)
		if !ok {
			break
		}
		if s < a || e <= s {
			t.Fatalf("NextData(%#x) = [%#x, %#x)", a, s, e)
		}
		got = append(got, [2]uint64{s >> 12, e >> 12})
		a = e
	}
	want := [][2]uint64{{0, 3}, {5, 10}, {13, 30}, {31, 32}}
	if !slices.Equal(got, want) {
		t.Fatalf("extents (pages) %v, want %v", got, want)
	}
	if s, e, ok := m.NextData(7<<12 + 5); !ok || s != 7<<12+5 || e != 10<<12 {
		t.Errorf("NextData inside an extent = %#x, %#x, %v", s, e, ok)
	}
	// A frame written since is content for a later scan.
	if _, err := vm.ram.WriteAt(content[11<<12:12<<12], 11<<12); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if s, e, ok := m.NextData(10 << 12); !ok || s != 11<<12 || e != 12<<12 {
		t.Errorf("NextData after a write = %#x, %#x, %v; want the written frame", s, e, ok)
	}
}

// TestMemoryLendCachedRuns lends a VM whose pages are all remote: the first
// lend fills the cache in frame order, so the second shows the whole run
// of cached frames as one segment from cache memory (not a page at a
// time), right, and counts every page a hit.
func TestMemoryLendCachedRuns(t *testing.T) {
	const pages = 512
	content := stampedContent(pages)
	vm := newFakeVM(t, content, 1, pages)
	for g := range pages {
		if err := vm.pageOut(fabric.GFN(g), 0); err != nil {
			t.Fatal(err)
		}
	}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive})
	if got, bad, err := lendChecked(m, 0, pages*4096); err != nil || bad != 0 || got != pages {
		t.Fatalf("first lend: %d pages, %d wrong, %v", got, bad, err)
	}
	before := m.Stats()
	segments, cachedPages := 0, 0
	if err := m.LendPhys(0, pages*4096, func(s physmem.Segment) bool {
		segments++
		for off := uint64(0); off < s.Len; off += 4096 {
			if err := checkPage(s.Data[off:off+4096], fabric.GFNOf(s.Addr+off)); err != nil {
				t.Errorf("segment %#x+%d: %v", s.Addr, s.Len, err)
				return false
			}
			cachedPages++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	s := m.Stats()
	if s.RemotePagesFetched != before.RemotePagesFetched || s.CacheHits-before.CacheHits != pages || cachedPages != pages {
		t.Errorf("second lend fetched %d, hit %d, showed %d pages: want 0, %d, %d", s.RemotePagesFetched-before.RemotePagesFetched, s.CacheHits-before.CacheHits, cachedPages, pages, pages)
	}
	// one segment per lend round at most (rounds start at 256 pages)
	if segments > 2 {
		t.Errorf("%d cached frames shown in %d segments, want them run together", pages, segments)
	}
}

// TestMemoryLendFullBatches lends a VM whose remote pages are sparse (one
// frame in five): a lend round ends once it holds a full batch of pages to
// fetch, not at a fixed number of frames, so the fetches of a scan are
// full batches however sparse the remote pages lie, and every page is
// still shown right. The local frames between them are a later retry's
// business: one moved away while shown is read again (into a buffer of
// its own, the round's holding its fetches).
func TestMemoryLendFullBatches(t *testing.T) {
	const pages = 16384
	content := stampedContent(pages)
	vm := newFakeVM(t, content, 1, pages)
	scatter(t, vm, 5)
	var mu sync.Mutex
	var batches []int
	tr := vm.trs[0]
	vm.trs = map[uint8]fabric.Transport{0: recordingTransport{Transport: tr, record: func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}}}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodProxy})
	if got, bad, err := lendChecked(m, 0, pages*4096); err != nil || bad != 0 || got != pages {
		t.Fatalf("lend: %d pages, %d wrong, %v", got, bad, err)
	}
	remote := (pages + 3) / 5 // frames 1, 6, 11, ...
	total, largest := 0, 0
	for _, n := range batches {
		total += n
		largest = max(largest, n)
	}
	if total != remote {
		t.Fatalf("fetched %d pages in %v, want the %d remote ones once", total, batches, remote)
	}
	// rounds ramp up from 256 frames (51 remote), then fetch 512 at a time
	if largest != 512 || len(batches) > remote/512+5 {
		t.Errorf("fetch batches %v: want full batches of 512 after the first rounds", batches)
	}
}

type recordingTransport struct {
	fabric.Transport
	record func(slots int)
}

func (r recordingTransport) ReadSlots(ctx context.Context, b []fabric.SlotIO) error {
	r.record(len(b))
	return r.Transport.ReadSlots(ctx, b)
}

// TestMemoryLendTakesInASmallRest: a lend of a megabyte and a few bytes
// (a search's chunk with its patterns' overlap) is one fetch, not a full
// round and then a round of one page with a fetch of its own.
func TestMemoryLendTakesInASmallRest(t *testing.T) {
	const pages = 300
	content := stampedContent(pages)
	vm := newFakeVM(t, content, 1, pages)
	for g := range pages {
		if err := vm.pageOut(fabric.GFN(g), 0); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var batches []int
	tr := vm.trs[0]
	vm.trs = map[uint8]fabric.Transport{0: recordingTransport{Transport: tr, record: func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}}}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodProxy})
	const n = 1<<20 + 21
	var got []byte
	if err := m.LendPhys(0, n, func(s physmem.Segment) bool {
		got = append(got, s.Data...)
		return s.Err == nil
	}); err != nil || !bytes.Equal(got, content[:n]) {
		t.Fatalf("lend of %d bytes: %d bytes, right %v (%v)", n, len(got), bytes.Equal(got, content[:len(got)]), err)
	}
	if len(batches) != 1 || batches[0] != 257 {
		t.Errorf("fetch batches %v, want one of all 257 pages", batches)
	}
}
