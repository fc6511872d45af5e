//go:build linux

package fabric

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// churn is a fake Locations whose word changes on every load.
type churn struct{ n atomic.Uint64 }

func (c *churn) Load(GFN) Word { return LocalWord(uint32(c.n.Add(1))) }
func (c *churn) Len() uint64   { return 1 }

// script is a fake Locations that returns its words in order, then the last forever.
type script struct {
	words []Word
	i     int
}

func (s *script) Load(GFN) Word {
	w := s.words[min(s.i, len(s.words)-1)]
	s.i++
	return w
}
func (s *script) Len() uint64 { return 1 }

func TestReadStableUnstable(t *testing.T) {
	calls := 0
	_, err := readStable(&churn{}, 0, 5, func(Word) error { calls++; return nil })
	if !errors.Is(err, ErrUnstable) {
		t.Fatalf("ever-changing word: %v, want ErrUnstable", err)
	}
	if calls != 6 {
		t.Fatalf("read called %d times, want 6 (1 + 5 retries)", calls)
	}
}

func TestReadStableWaitsOutMoves(t *testing.T) {
	moving := LocalWord(1).ToMoving()
	final := moving.ToLocal()
	s := &script{words: []Word{moving, moving, moving, final}}
	var seen []Word
	w, err := ReadStable(s, 0, func(w Word) error { seen = append(seen, w); return nil })
	if err != nil || w != final {
		t.Fatalf("ReadStable = %v, %v; want %v", w, err, final)
	}
	if len(seen) != 1 || seen[0] != final {
		t.Fatalf("read called with %v: a moving page must never be read", seen)
	}
}

func TestReadStableErrors(t *testing.T) {
	m := newMap(t, 4)
	boom := errors.New("boom")
	if _, err := ReadStable(m, 2, func(Word) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("read error under a stable word: %v", err)
	}
	// A read error while the word changed is retried, not returned.
	s := &script{words: []Word{LocalWord(1), LocalWord(2), LocalWord(2), LocalWord(2)}}
	calls := 0
	w, err := ReadStable(s, 0, func(Word) error {
		calls++
		if calls == 1 {
			return boom
		}
		return nil
	})
	if err != nil || w != LocalWord(2) || calls != 2 {
		t.Fatalf("ReadStable after a raced failure = %v, %v after %d calls", w, err, calls)
	}
	called := false
	if _, err := ReadStable(m, 4, func(Word) error { called = true; return nil }); !errors.Is(err, ErrGFNRange) || called {
		t.Fatalf("gfn beyond the map: %v (read called: %v)", err, called)
	}
}

// pages is guest data kept consistent with a location map the way the
// runtime keeps it: a frame's data changes only while its word says moving,
// and every word of the data equals the location word it is valid under.
type pages struct {
	m    *LocationMap
	data [][8]atomic.Uint64
}

func newPages(t *testing.T, gfns int) *pages {
	return &pages{m: newMap(t, uint64(gfns)), data: make([][8]atomic.Uint64, gfns)}
}

// move runs one page-in or page-out of g the way a runtime does.
func (p *pages) move(g GFN, rng *rand.Rand) {
	w := p.m.Load(g)
	moving := w.ToMoving()
	p.m.Store(g, moving)
	final := moving.ToLocal()
	if w.State() == StateLocal {
		final, _ = moving.ToRemote(uint8(rng.UintN(4)), rng.Uint64N(1<<20))
	}
	for k := range p.data[g] {
		p.data[g][k].Store(uint64(final))
		if k == 3 {
			runtime.Gosched() // widen the window a torn read would fall into
		}
	}
	p.m.Store(g, final)
}

func (p *pages) readInto(g GFN, buf *[8]uint64) {
	for k := range buf {
		buf[k] = p.data[g][k].Load()
		if k == 3 {
			runtime.Gosched() // and the window of the reader
		}
	}
}

func consistent(buf *[8]uint64, w Word) bool {
	for _, v := range buf {
		if v != uint64(w) {
			return false
		}
	}
	return true
}

func TestReadStableUnderConcurrentMoves(t *testing.T) {
	const gfns, readers, reads, minMoves = 4, 2, 20000, 20000
	p := newPages(t, gfns)
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	var moves atomic.Int64
	go func() {
		defer writer.Done()
		rng := rand.New(rand.NewPCG(1, 1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.move(GFN(rng.IntN(gfns)), rng)
			moves.Add(1)
		}
	}()
	var wg sync.WaitGroup
	var torn, unstable, ok atomic.Int64
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 2))
			var buf [8]uint64
			for n := 0; n < reads || moves.Load() < minMoves; n++ {
				g := GFN(rng.IntN(gfns))
				w, err := ReadStable(p.m, g, func(Word) error { p.readInto(g, &buf); return nil })
				switch {
				case errors.Is(err, ErrUnstable):
					unstable.Add(1)
				case err != nil:
					t.Errorf("ReadStable: %v", err)
					return
				case !consistent(&buf, w):
					torn.Add(1)
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	writer.Wait()
	t.Logf("%d moves, %d consistent reads, %d unstable", moves.Load(), ok.Load(), unstable.Load())
	if torn.Load() != 0 {
		t.Fatalf("%d reads returned data inconsistent with their word", torn.Load())
	}
	if moves.Load() < minMoves {
		t.Fatalf("writer made only %d moves: the test did not race anything", moves.Load())
	}
	if total := ok.Load() + unstable.Load(); unstable.Load() > total/100 {
		t.Fatalf("%d of %d reads unstable", unstable.Load(), total)
	}
}

func TestReadStableBatchUnderConcurrentMoves(t *testing.T) {
	const gfns, batch, rounds, minMoves = 64, 16, 2000, 20000
	p := newPages(t, gfns)
	stop := make(chan struct{})
	done := make(chan struct{})
	var moves atomic.Int64
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(3, 3))
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.move(GFN(rng.IntN(gfns)), rng)
			moves.Add(1)
		}
	}()
	rng := rand.New(rand.NewPCG(4, 4))
	gs := make([]GFN, batch)
	words := make([]Word, batch)
	errs := make([]error, batch)
	bufs := make([][8]uint64, batch)
	retried := 0
	n := 0
	for ; n < rounds || moves.Load() < minMoves; n++ {
		for i := range gs {
			gs[i] = GFN(rng.IntN(gfns))
		}
		calls := 0
		err := ReadStableBatch(p.m, gs, words, errs, func(pending []int) error {
			calls++
			for _, i := range pending {
				p.readInto(gs[i], &bufs[i])
			}
			return nil
		})
		if calls > 1 {
			retried++
		}
		for i := range gs {
			if errs[i] != nil {
				if !errors.Is(errs[i], ErrUnstable) || !errors.Is(err, ErrPartial) {
					t.Fatalf("entry %d: %v (batch %v)", i, errs[i], err)
				}
				continue
			}
			if !consistent(&bufs[i], words[i]) {
				t.Fatalf("entry %d (gfn %d) inconsistent with %v", i, gs[i], words[i])
			}
		}
	}
	close(stop)
	<-done
	t.Logf("%d moves, %d of %d batches needed a retry round", moves.Load(), retried, n)
}

func TestReadStableBatchErrors(t *testing.T) {
	m := newMap(t, 8)
	boom := errors.New("boom")
	gs := []GFN{1, 8, 2, 3}
	words := make([]Word, 4)
	errs := make([]error, 4)
	err := ReadStableBatch(m, gs, words, errs, func(pending []int) error {
		for _, i := range pending {
			if gs[i] == 8 {
				t.Fatalf("read asked for gfn %d", gs[i])
			}
			if gs[i] == 3 {
				errs[i] = boom
			}
		}
		return nil
	})
	if !errors.Is(err, ErrPartial) {
		t.Fatalf("batch: %v, want ErrPartial", err)
	}
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrGFNRange) || !errors.Is(errs[3], boom) {
		t.Fatalf("errs = %v", errs)
	}
}

func TestReadStableBatchWholeFailure(t *testing.T) {
	m := newMap(t, 8)
	boom := errors.New("peer down")
	errs := make([]error, 2)
	err := ReadStableBatch(m, []GFN{0, 1}, make([]Word, 2), errs, func([]int) error { return boom })
	if !errors.Is(err, ErrPartial) || !errors.Is(errs[0], boom) || !errors.Is(errs[1], boom) {
		t.Fatalf("batch: %v, errs %v", err, errs)
	}
	if err := ReadStableBatch(m, []GFN{0}, nil, nil, nil); err == nil {
		t.Fatal("mismatched slices accepted")
	}
}

func BenchmarkReadStable(b *testing.B) {
	m, err := CreateLocationMap(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	src := make([]byte, PageSize)
	dst := make([]byte, PageSize)
	read := func(Word) error { copy(dst, src); return nil }
	var g GFN
	for b.Loop() {
		g = (g + 4099) & (1<<20 - 1)
		if _, err := ReadStable(m, g, read); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStableWordOnly(b *testing.B) {
	m, err := CreateLocationMap(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	read := func(Word) error { return nil }
	var g GFN
	for b.Loop() {
		g = (g + 4099) & (1<<20 - 1)
		if _, err := ReadStable(m, g, read); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStableBatch256(b *testing.B) {
	m, err := CreateLocationMap(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	gs := make([]GFN, 256)
	words := make([]Word, 256)
	errs := make([]error, 256)
	read := func([]int) error { return nil }
	for b.Loop() {
		for i := range gs {
			gs[i] = (gs[i] + GFN(4099*(i+1))) & (1<<20 - 1)
		}
		if err := ReadStableBatch(m, gs, words, errs, read); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "gfns/s")
}
