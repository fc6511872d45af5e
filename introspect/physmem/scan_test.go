package physmem_test

import (
	"slices"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// holeReader fails every read touching [hole, hole+4096).
type holeReader struct {
	physmem.Reader
	hole uint64
}

func (h holeReader) ReadPhys(rs []physmem.Range) error {
	var failed bool
	for i := range rs {
		r := &rs[i]
		if r.Addr < h.hole+4096 && r.Addr+uint64(len(r.Buf)) > h.hole {
			r.Err, failed = physmem.ErrOutOfRange, true
			continue
		}
		if err := h.Reader.ReadPhys(rs[i : i+1]); err != nil {
			failed = true
		}
	}
	if failed {
		return physmem.ErrPartial
	}
	return nil
}

func TestScanFindsEveryMatchAcrossChunksAndHoles(t *testing.T) {
	const size = 40 << 20
	mem := make([]byte, size)
	pattern := []byte("swapper/0\x00")
	want := []uint64{0, 4097, 16<<20 - 3, 16<<20 + 20, 32<<20 + 11, size - uint64(len(pattern))}
	for _, at := range want {
		copy(mem[at:], pattern)
	}
	hidden := uint64(20 << 20) // in a hole: must not be reported
	copy(mem[hidden+100:], pattern)
	r := holeReader{image.NewBytes(mem), hidden}
	var got []uint64
	physmem.Scan(r, pattern, func(pa uint64) bool { got = append(got, pa); return true })
	if !slices.Equal(got, want) {
		t.Fatalf("matches at %#x, want %#x", got, want)
	}
	var first []uint64
	physmem.Scan(r, pattern, func(pa uint64) bool { first = append(first, pa); return len(first) < 2 })
	if !slices.Equal(first, want[:2]) {
		t.Fatalf("stopping early gave %#x, want %#x", first, want[:2])
	}
}

func TestReadLenientZeroesUnreadablePages(t *testing.T) {
	mem := make([]byte, 4*4096)
	for i := range mem {
		mem[i] = 0xAA
	}
	buf := physmem.ReadLenient(holeReader{image.NewBytes(mem), 4096}, 2048, make([]byte, 3*4096))
	for i, b := range buf {
		pa := 2048 + i
		want := byte(0xAA)
		if pa >= 4096 && pa < 8192 {
			want = 0
		}
		if b != want {
			t.Fatalf("byte at %#x = %#x, want %#x", pa, b, want)
		}
	}
}
