package scan_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
)

// naive finds every occurrence of every pattern in mem, skipping matches
// that touch a page for which skip is true.
func naive(mem []byte, patterns [][]byte, skip func(page uint64) bool) []scan.Match {
	var out []scan.Match
	for a := 0; a < len(mem); a++ {
		for pi, p := range patterns {
			if a+len(p) > len(mem) || !bytes.Equal(mem[a:a+len(p)], p) {
				continue
			}
			bad := false
			for pg := uint64(a) / 4096; pg <= uint64(a+len(p)-1)/4096; pg++ {
				bad = bad || skip(pg)
			}
			if !bad {
				out = append(out, scan.Match{Addr: uint64(a), Pattern: pi})
			}
		}
	}
	return out
}

// readers are the ways a scan meets memory: lent in place in one piece,
// lent in small pieces with retries (seams and undo), and copied in
// batches by a reader that cannot lend.
func readers(r physmem.Reader) map[string]physmem.Reader {
	return map[string]physmem.Reader{
		"lent":   r,
		"choppy": &physmemtest.Choppy{R: r, Max: 3000, RetryEvery: 4, Seed: 9},
		"copied": copyOnly{r},
	}
}

// copyOnly hides every method of a reader but ReadPhys and Size.
type copyOnly struct{ physmem.Reader }

func plant(mem []byte, p []byte, at ...int) {
	for _, a := range at {
		copy(mem[a:], p)
	}
}

func TestScanFindsEveryMatch(t *testing.T) {
	mem := make([]byte, 64*4096)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range mem {
		mem[i] = byte(rng.IntN(200))
	}
	pats := [][]byte{[]byte("vmt_hideme"), {0xde, 0xad, 0xbe, 0xef}}
	plant(mem, pats[0], 0, 4096-5, 5*4096-1, 17*4096+100, len(mem)-10)
	plant(mem, pats[1], 4096-2, 9*4096-3, 9*4096+1)
	for name, r := range readers(image.NewBytes(mem)) {
		for _, batch := range []int{1, 3, 4096} {
			res, err := scan.Memory(r, pats, scan.Options{BatchPages: batch})
			if err != nil {
				t.Fatal(err)
			}
			want := naive(mem, pats, func(uint64) bool { return false })
			if !equal(res.Matches, want) {
				t.Fatalf("%s, batch %d: matches %v, want %v", name, batch, res.Matches, want)
			}
			if res.BytesRead != uint64(len(mem)) {
				t.Errorf("%s: BytesRead %d, want %d", name, res.BytesRead, len(mem))
			}
		}
	}
}

func TestScanUnreadableIsReportedNotZero(t *testing.T) {
	mem := make([]byte, 16*4096)
	pat := []byte("rootkit")
	plant(mem, pat, 2*4096+8, 6*4096-3, 10*4096)
	f := physmemtest.FailPages(image.NewBytes(mem), 6*4096, 7*4096, 10*4096)
	for name, r := range map[string]physmem.Reader{"copied": f, "choppy": &physmemtest.Choppy{R: f, Max: 5000, RetryEvery: 2}} {
		t.Run(name, func(t *testing.T) { checkUnreadable(t, r, mem, pat) })
	}
}

func checkUnreadable(t *testing.T, r physmem.Reader, mem, pat []byte) {
	res, err := scan.Memory(r, [][]byte{pat}, scan.Options{BatchPages: 5})
	if !errors.Is(err, scan.ErrIncomplete) {
		t.Fatalf("err %v, want ErrIncomplete", err)
	}
	want := naive(mem, [][]byte{pat}, func(p uint64) bool { return p == 6 || p == 7 || p == 10 })
	if !equal(res.Matches, want) {
		t.Fatalf("matches %v, want %v", res.Matches, want)
	}
	if len(res.Unreadable) != 2 || res.Unreadable[0].Addr != 6*4096 || res.Unreadable[0].Len != 2*4096 || res.Unreadable[1].Addr != 10*4096 {
		t.Fatalf("unreadable runs %+v, want [6,8) and [10,11) pages", res.Unreadable)
	}
	if !errors.Is(res.Unreadable[0].Cause, physmemtest.ErrInjected) {
		t.Errorf("cause %v, want the injected fault", res.Unreadable[0].Cause)
	}
}

func TestScanSkipsHoles(t *testing.T) {
	mem := make([]byte, 8*4096)
	pat := []byte("needle")
	plant(mem, pat, 4096+10, 5*4096+4)
	seg := image.NewBytes(mem)
	holey := holeReader{seg, 3 * 4096, 5 * 4096}
	res, err := scan.Memory(holey, [][]byte{pat}, scan.Options{})
	if err != nil {
		t.Fatalf("holes are not failures: %v", err)
	}
	if len(res.Matches) != 2 || res.BytesRead != 6*4096 {
		t.Fatalf("matches %v, bytes %d", res.Matches, res.BytesRead)
	}
}

func TestScanLimit(t *testing.T) {
	mem := bytes.Repeat([]byte("ab"), 4096)
	for name, r := range readers(image.NewBytes(mem)) {
		res, err := scan.Memory(r, [][]byte{[]byte("ab")}, scan.Options{Limit: 7})
		if err != nil || len(res.Matches) != 7 {
			t.Fatalf("%s: limit 7: %d matches, %v", name, len(res.Matches), err)
		}
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("xxneedlexx"), []byte("needle"), uint8(1))
	f.Fuzz(func(t *testing.T, content, pat []byte, batch uint8) {
		if len(pat) == 0 || len(pat) > 64 || len(content) > 6*4096 {
			return
		}
		mem := make([]byte, 4*4096)
		for i := 0; i < len(mem) && len(content) > 0; i++ {
			mem[i] = content[i%len(content)]
		}
		want := naive(mem, [][]byte{pat}, func(uint64) bool { return false })
		for name, r := range readers(image.NewBytes(mem)) {
			if c, ok := r.(*physmemtest.Choppy); ok {
				c.Max, c.Seed = int(batch)+1, uint64(batch)
			}
			res, err := scan.Memory(r, [][]byte{pat}, scan.Options{BatchPages: int(batch%5) + 1})
			if err != nil {
				t.Fatal(err)
			}
			if !equal(res.Matches, want) {
				t.Fatalf("%s: matches %v, want %v", name, res.Matches, want)
			}
		}
	})
}

// holeReader is a reader with [lo, hi) not backed.
type holeReader struct {
	physmem.Reader
	lo, hi uint64
}

func (h holeReader) ReadPhys(rs []physmem.Range) error {
	err := h.Reader.ReadPhys(rs)
	failed := false
	for i := range rs {
		if rs[i].Addr < h.hi && rs[i].Addr+uint64(len(rs[i].Buf)) > h.lo {
			rs[i].Err = physmem.ErrOutOfRange
			failed = true
		}
	}
	if failed {
		return physmem.ErrPartial
	}
	return err
}

func equal(a, b []scan.Match) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sparseReader reports one data range and counts reads outside it.
type sparseReader struct {
	physmem.Reader
	lo, hi  uint64
	outside int
}

func (s *sparseReader) NextData(addr uint64) (uint64, uint64, bool) {
	if addr >= s.hi {
		return 0, 0, false
	}
	return max(addr, s.lo), s.hi, true
}

func (s *sparseReader) ReadPhys(rs []physmem.Range) error {
	for _, r := range rs {
		if r.Addr < s.lo || r.Addr >= s.hi {
			s.outside++
		}
	}
	return s.Reader.ReadPhys(rs)
}

func TestScanSparseReadsOnlyData(t *testing.T) {
	mem := make([]byte, 32*4096)
	plant(mem, []byte("needle"), 10*4096-3, 20*4096)
	sr := &sparseReader{Reader: image.NewBytes(mem), lo: 8 * 4096, hi: 16 * 4096}
	res, err := scan.Memory(sr, [][]byte{[]byte("needle")}, scan.Options{BatchPages: 3})
	if err != nil || sr.outside != 0 || len(res.Matches) != 1 || res.Matches[0].Addr != 10*4096-3 {
		t.Fatalf("sparse scan: %v, %d reads outside the data, matches %v", err, sr.outside, res.Matches)
	}
	// A pattern with a zero byte could match in zeros: everything is read.
	sr.outside = 0
	_, err = scan.Memory(sr, [][]byte{{'l', 'e', 0}}, scan.Options{})
	if err != nil || sr.outside == 0 {
		t.Fatalf("zero-byte pattern: %v, %d reads outside", err, sr.outside)
	}
}

// A run of zeros a lender shows as a Zero segment is skipped for patterns
// without a zero byte and searched for the others, seams included.
func TestScanZeroRuns(t *testing.T) {
	mem := make([]byte, 24*4096)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, page := range []int{0, 1, 5, 9, 10, 17, 23} {
		for i := page * 4096; i < (page+1)*4096; i++ {
			mem[i] = byte(1 + rng.IntN(200))
		}
	}
	pats := [][]byte{[]byte("needle"), {0, 0, 'z', 'q'}, {'k', 'w', 0}}
	plant(mem, pats[0], 4096-2, 9*4096+100)
	plant(mem, pats[1], 5*4096-2, 17*4096-2, 20*4096)
	plant(mem, pats[2], 2*4096-2, 11*4096-2)
	want := naive(mem, pats, func(uint64) bool { return false })
	for name, r := range readers(image.NewBytes(mem)) {
		res, err := scan.Memory(r, pats, scan.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !equal(res.Matches, want) {
			t.Fatalf("%s: matches %v, want %v", name, res.Matches, want)
		}
		// Without a zero byte in any pattern, zeros are not read.
		res, err = scan.Memory(r, pats[:1], scan.Options{})
		if err != nil || len(res.Matches) != 2 {
			t.Fatalf("%s: needle: %v, %v", name, res.Matches, err)
		}
		// A pattern of zeros alone matches all through a run of zeros.
		zeroPats := [][]byte{{0, 0, 0}, []byte("needle")}
		res, err = scan.Memory(r, zeroPats, scan.Options{})
		if want := naive(mem, zeroPats, func(uint64) bool { return false }); err != nil || !equal(res.Matches, want) {
			t.Fatalf("%s: zeros: %d matches (%v), want %d", name, len(res.Matches), err, len(want))
		}
	}
}

// TestScanRange: a range scan reports the matches wholly inside the range,
// not one that starts before it or runs past its end, on every reader.
func TestScanRange(t *testing.T) {
	mem := make([]byte, 32*4096)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range mem {
		mem[i] = byte(rng.IntN(200))
	}
	pats := [][]byte{[]byte("vmt_hideme")}
	plant(mem, pats[0], 3*4096-4, 5*4096+7, 9*4096-2, 20*4096)
	start, end := uint64(3*4096-2), uint64(9*4096+5) // cuts the first and the third
	var want []scan.Match
	for _, m := range naive(mem, pats, func(uint64) bool { return false }) {
		if m.Addr >= start && m.Addr+uint64(len(pats[0])) <= end {
			want = append(want, m)
		}
	}
	if len(want) != 1 {
		t.Fatalf("test set-up: %d matches inside, want 1", len(want))
	}
	for name, r := range readers(image.NewBytes(mem)) {
		res, err := scan.Range(r, pats, start, end, scan.Options{BatchPages: 2})
		if err != nil || !equal(res.Matches, want) {
			t.Errorf("%s: range [%#x, %#x): matches %v (%v), want %v", name, start, end, res.Matches, err, want)
		}
		if res, _ := scan.Range(r, pats, end, start, scan.Options{}); len(res.Matches) != 0 {
			t.Errorf("%s: an empty range found %v", name, res.Matches)
		}
	}
}
