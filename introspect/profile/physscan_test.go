package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
)

// TestScanPatternsReaders: in place, in choppy pieces with retries, and
// copied, a scan finds the same matches in address order, across chunk
// and piece seams, a match ending in zeros included.
func TestScanPatternsReaders(t *testing.T) {
	const size = 40 << 20
	mem := make([]byte, size)
	patterns := [][]byte{vmcoreinfoKallsyms, kallsymsDigits}
	type hit struct {
		i  int
		at uint64
	}
	var want []hit
	for _, h := range []hit{{1, 7}, {0, 4090}, {1, scanChunk - 5}, {0, scanChunk + 100}, {1, 2*scanChunk - 1}, {0, size - 40}} {
		copy(mem[h.at:], patterns[h.i])
		want = append(want, h)
	}
	copy(mem[size-10:], kallsymsDigits[:10]) // cut off by the end: no match
	readers := map[string]physmem.Reader{
		"lent":   image.NewBytes(mem),
		"choppy": &physmemtest.Choppy{R: image.NewBytes(mem), Max: 1 << 20, RetryEvery: 3, Seed: 5},
		"copied": struct{ physmem.Reader }{image.NewBytes(mem)},
	}
	for name, r := range readers {
		var got []hit
		scanPatterns(r, patterns, func(i int, pa uint64) bool {
			got = append(got, hit{i, pa})
			return true
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s: matches %v, want %v", name, got, want)
		}
		got = got[:0]
		scanPatterns(r, patterns, func(i int, pa uint64) bool {
			got = append(got, hit{i, pa})
			return len(got) < 3
		})
		if !slices.Equal(got, want[:3]) {
			t.Errorf("%s: stopping after 3 gave %v", name, got)
		}
	}
}

// TestWithPhys: the bytes are the same whether lent whole, lent in pieces
// (then copied) or read.
func TestWithPhys(t *testing.T) {
	mem := make([]byte, 1<<20)
	for i := range mem {
		mem[i] = byte(i * 7)
	}
	for name, r := range map[string]physmem.Reader{
		"lent":   image.NewBytes(mem),
		"choppy": &physmemtest.Choppy{R: image.NewBytes(mem), Max: 3000, RetryEvery: 2, Seed: 1},
		"copied": struct{ physmem.Reader }{image.NewBytes(mem)},
	} {
		var got []byte
		err := withPhys(r, 1000, 200000, func(b []byte) error {
			got = bytes.Clone(b)
			return nil
		})
		if err != nil || !bytes.Equal(got, mem[1000:201000]) {
			t.Errorf("%s: err %v, bytes equal %v", name, err, bytes.Equal(got, mem[1000:201000]))
		}
	}
}

// TestScanPatternsAcrossHoles: the holes of a decompressed image are lent
// as Zero segments, without bytes; a match whose last byte is a hole's
// first zero is found, and the bytes on either side of a hole are not
// taken for neighbours.
func TestScanPatternsAcrossHoles(t *testing.T) {
	const region, hole = 16 << 10, 1 << 20
	mem := make([]byte, 3*region+2*hole)
	a, b, c := 0, region+hole, 2*region+2*hole
	digits := a + region - (len(kallsymsDigits) - 1) // its last NUL in the first hole
	copy(mem[digits:], kallsymsDigits)
	half := len(vmcoreinfoKallsyms) / 2
	copy(mem[b+region-half:], vmcoreinfoKallsyms[:half]) // the second hole between the halves
	copy(mem[c:], vmcoreinfoKallsyms[half:])
	for _, at := range []int{a, b, c} {
		mem[at+region/2] = 1 // the regions are data
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "holes.zst")
	if err := os.WriteFile(path, enc.EncodeAll(mem, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	zero := false
	_ = img.LendPhys(0, img.Size(), func(s physmem.Segment) bool {
		zero = zero || s.Zero
		return true
	})
	if !zero {
		t.Skip("the image has no holes to lend")
	}
	var got []scan.Match
	scanPatterns(img, [][]byte{vmcoreinfoKallsyms, kallsymsDigits}, func(i int, pa uint64) bool {
		got = append(got, scan.Match{Addr: pa, Pattern: i})
		return true
	})
	if want := []scan.Match{{Addr: uint64(digits), Pattern: 1}}; !slices.Equal(got, want) {
		t.Errorf("matches %v, want %v", got, want)
	}
}
