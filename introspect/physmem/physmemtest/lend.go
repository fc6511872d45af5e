package physmemtest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// runLender checks the physmem.Lender contract: the segments cover the
// range in address order, a retry replaces the segment before it, the bytes
// equal the content, addresses past it fail with ErrOutOfRange, and a
// visitor that says stop is not called again.
func runLender(t *testing.T, l physmem.Lender, content []byte) {
	t.Run("LendWhole", func(t *testing.T) {
		checkLend(t, l, content, 0, uint64(len(content)))
	})
	t.Run("LendRandom", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for range 50 {
			a := rng.IntN(len(content))
			checkLend(t, l, content, uint64(a), uint64(1+rng.IntN(len(content)-a)))
		}
	})
	t.Run("LendPastEnd", func(t *testing.T) {
		start := uint64(len(content) - 100)
		got, failed, err := lendAll(t, l, start, 3*4096)
		if !errors.Is(err, physmem.ErrPartial) {
			t.Fatalf("lend past the end: err %v, want ErrPartial", err)
		}
		if !bytes.Equal(got[:100], content[start:]) {
			t.Error("lend past the end: the bytes before the end differ from the content")
		}
		if failed == nil || !errors.Is(failed, physmem.ErrOutOfRange) {
			t.Errorf("lend past the end: segment error %v, want ErrOutOfRange", failed)
		}
	})
	t.Run("LendStop", func(t *testing.T) {
		calls := 0
		_ = l.LendPhys(0, uint64(len(content)), func(s physmem.Segment) bool {
			calls++
			return false
		})
		if calls != 1 {
			t.Errorf("visit called %d times after saying stop, want 1", calls)
		}
	})
	t.Run("LendConcurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 7))
				for range 10 {
					a := rng.IntN(len(content))
					checkLend(t, l, content, uint64(a), uint64(1+rng.IntN(len(content)-a)))
				}
			}()
		}
		wg.Wait()
	})
}

// lendAll lends [addr, addr+n) and assembles what it was shown, checking
// order and coverage; failed is the first segment error.
func lendAll(t testing.TB, l physmem.Lender, addr, n uint64) (got []byte, failed error, err error) {
	t.Helper()
	got = make([]byte, n)
	next, last := addr, addr
	err = l.LendPhys(addr, n, func(s physmem.Segment) bool {
		if s.Retry {
			if s.Addr != last {
				t.Errorf("retry at %#x, but the segment before began at %#x", s.Addr, last)
			}
			next = s.Addr
		}
		if s.Addr != next {
			t.Errorf("segment at %#x, want %#x (segments in order, no gaps)", s.Addr, next)
		}
		if s.Err == nil && !s.Zero && uint64(len(s.Data)) != s.Len {
			t.Errorf("segment at %#x: %d bytes of data, Len %d", s.Addr, len(s.Data), s.Len)
		}
		if s.Len == 0 || s.Addr+s.Len > addr+n {
			t.Errorf("segment %#x+%d outside the lent range %#x+%d", s.Addr, s.Len, addr, n)
			return false
		}
		switch {
		case s.Err != nil:
			failed = cmpOr(failed, s.Err)
		case s.Zero:
			clear(got[s.Addr-addr : s.Addr-addr+s.Len])
		default:
			copy(got[s.Addr-addr:], s.Data)
		}
		last, next = s.Addr, s.Addr+s.Len
		return true
	})
	if next != addr+n {
		t.Errorf("segments end at %#x, want %#x", next, addr+n)
	}
	return got, failed, err
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func checkLend(t testing.TB, l physmem.Lender, content []byte, addr, n uint64) {
	t.Helper()
	got, failed, err := lendAll(t, l, addr, n)
	if err != nil || failed != nil {
		t.Fatalf("lend %#x+%d: %v (segment: %v)", addr, n, err, failed)
	}
	if !bytes.Equal(got, content[addr:addr+n]) {
		t.Fatalf("lend %#x+%d: the bytes differ from the content", addr, n)
	}
}
