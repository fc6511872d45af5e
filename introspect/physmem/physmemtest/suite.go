package physmemtest

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// NewReader builds the reader under test so that it presents content at
// physical addresses [0, len(content)). It registers its own cleanup.
type NewReader func(t testing.TB, content []byte) physmem.Reader

// contentSize is not a page multiple, so readers meet a ragged end.
const contentSize = 300*1024 + 123

// Run checks that the readers newReader builds honour the physmem.Reader
// contract.
func Run(t *testing.T, newReader NewReader) {
	content := make([]byte, contentSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	r := newReader(t, content)

	t.Run("Size", func(t *testing.T) {
		if got := r.Size(); got != uint64(len(content)) {
			t.Fatalf("Size() = %d, want %d", got, len(content))
		}
	})
	t.Run("Whole", func(t *testing.T) {
		buf := make([]byte, len(content))
		ranges := []physmem.Range{{Addr: 0, Buf: buf}}
		if err := r.ReadPhys(ranges); err != nil {
			t.Fatalf("read whole content: %v", err)
		}
		if !bytes.Equal(buf, content) {
			t.Fatal("whole-content read differs from the content")
		}
	})
	t.Run("RandomBatches", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for range 50 {
			checkBatch(t, r, content, randomBatch(rng, len(content), 1+rng.IntN(64)))
		}
	})
	t.Run("PageBoundaries", func(t *testing.T) {
		var batch []physmem.Range
		for a := 4096 - 7; a+4096 <= len(content); a += 4096 {
			batch = append(batch, physmem.Range{Addr: uint64(a), Buf: make([]byte, 4096)})
		}
		checkBatch(t, r, content, batch)
	})
	t.Run("OutOfRange", func(t *testing.T) { checkOutOfRange(t, r, content) })
	t.Run("AllFail", func(t *testing.T) { checkAllFail(t, r, content) })
	t.Run("ZeroLength", func(t *testing.T) {
		batch := []physmem.Range{
			{Addr: 0, Buf: []byte{}},
			{Addr: uint64(len(content)), Buf: nil},
			{Addr: ^uint64(0), Buf: []byte{}},
		}
		if err := r.ReadPhys(batch); err != nil {
			t.Fatalf("zero-length batch: %v", err)
		}
		for i, rg := range batch {
			if rg.Err != nil {
				t.Errorf("zero-length range %d at %#x: %v", i, rg.Addr, rg.Err)
			}
		}
		if err := r.ReadPhys(nil); err != nil {
			t.Fatalf("empty batch: %v", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 99))
				for range 40 {
					checkBatch(t, r, content, randomBatch(rng, len(content), 1+rng.IntN(32)))
				}
			}()
		}
		wg.Wait()
	})
	if l, ok := r.(physmem.Lender); ok {
		runLender(t, l, content)
	}
}

func randomBatch(rng *rand.Rand, size, n int) []physmem.Range {
	batch := make([]physmem.Range, n)
	for i := range batch {
		l := rng.IntN(9000)
		if rng.IntN(4) == 0 {
			l = 1 + rng.IntN(16)
		}
		l = min(l, size)
		batch[i] = physmem.Range{Addr: uint64(rng.IntN(size - l + 1)), Buf: make([]byte, l)}
	}
	return batch
}

func checkBatch(t testing.TB, r physmem.Reader, content []byte, batch []physmem.Range) {
	t.Helper()
	if err := r.ReadPhys(batch); err != nil {
		t.Errorf("in-range batch of %d: %v", len(batch), err)
		return
	}
	for i, rg := range batch {
		if rg.Err != nil {
			t.Errorf("range %d (%#x+%d): %v", i, rg.Addr, len(rg.Buf), rg.Err)
			continue
		}
		if want := content[rg.Addr : rg.Addr+uint64(len(rg.Buf))]; !bytes.Equal(rg.Buf, want) {
			t.Errorf("range %d (%#x+%d): bytes differ from the content", i, rg.Addr, len(rg.Buf))
		}
	}
}

func checkOutOfRange(t *testing.T, r physmem.Reader, content []byte) {
	size := uint64(len(content))
	batch := []physmem.Range{
		{Addr: 16, Buf: make([]byte, 100)},
		{Addr: size - 4, Buf: make([]byte, 8)},       // straddles the end
		{Addr: size, Buf: make([]byte, 1)},           // just past the end
		{Addr: ^uint64(0) - 2, Buf: make([]byte, 8)}, // wraps the address space
		{Addr: 1 << 40, Buf: make([]byte, 4096)},
		{Addr: size - 100, Buf: make([]byte, 100)}, // the last bytes
	}
	err := r.ReadPhys(batch)
	if !errors.Is(err, physmem.ErrPartial) {
		t.Fatalf("batch with bad ranges returned %v, want ErrPartial", err)
	}
	for _, i := range []int{0, 5} {
		rg := batch[i]
		if rg.Err != nil {
			t.Errorf("good range %d beside bad ones: %v", i, rg.Err)
		} else if !bytes.Equal(rg.Buf, content[rg.Addr:rg.Addr+uint64(len(rg.Buf))]) {
			t.Errorf("good range %d beside bad ones: bytes differ", i)
		}
	}
	for _, i := range []int{1, 2, 3, 4} {
		if !errors.Is(batch[i].Err, physmem.ErrOutOfRange) {
			t.Errorf("range %d at %#x+%d: err %v, want ErrOutOfRange", i, batch[i].Addr, len(batch[i].Buf), batch[i].Err)
		}
	}
}

// checkAllFail asserts that a batch in which every range fails sets every
// range's Err, and that a stale Err from an earlier use of a Range is cleared
// when the range now succeeds.
func checkAllFail(t *testing.T, r physmem.Reader, content []byte) {
	size := uint64(len(content))
	batch := []physmem.Range{
		{Addr: size, Buf: make([]byte, 8)},
		{Addr: 1 << 41, Buf: make([]byte, 4096)},
		{Addr: ^uint64(0) - 1, Buf: make([]byte, 4)},
	}
	if err := r.ReadPhys(batch); !errors.Is(err, physmem.ErrPartial) {
		t.Fatalf("batch of only bad ranges returned %v, want ErrPartial", err)
	}
	for i, rg := range batch {
		if !errors.Is(rg.Err, physmem.ErrOutOfRange) {
			t.Errorf("range %d of an all-bad batch: err %v, want ErrOutOfRange", i, rg.Err)
		}
	}
	stale := []physmem.Range{{Addr: 0, Buf: make([]byte, 64), Err: errors.New("stale")}}
	if err := r.ReadPhys(stale); err != nil || stale[0].Err != nil {
		t.Errorf("good range with a stale Err: batch %v, range %v", err, stale[0].Err)
	}
}
