package physmemtest

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// Choppy is a physmem.Lender over any Reader made to test visitors: it lends
// what R reads in segments of random lengths (1 to Max bytes, cut at every
// page R fails), and shows every RetryEvery-th segment first with wrong
// bytes (its content rotated by one) and then again, right, with Retry set.
// A visitor that keeps anything from the first showing reports it. A
// segment whose bytes are all zero is shown as a Zero segment.
type Choppy struct {
	R          physmem.Reader
	Max        int
	RetryEvery int
	Seed       uint64
}

// Size is the wrapped reader's size.
func (c *Choppy) Size() uint64 { return c.R.Size() }

// ReadPhys passes through to R.
func (c *Choppy) ReadPhys(ranges []physmem.Range) error { return c.R.ReadPhys(ranges) }

// LendPhys implements physmem.Lender.
func (c *Choppy) LendPhys(addr, n uint64, visit func(physmem.Segment) bool) error {
	if addr+n < addr {
		return fmt.Errorf("choppy lend %#x+%d: %w", addr, n, physmem.ErrOutOfRange)
	}
	buf := make([]byte, n)
	var pages []physmem.Range
	for off := uint64(0); off < n; {
		l := min(n-off, 4096-(addr+off)%4096)
		if a, size := addr+off, c.R.Size(); a < size {
			l = min(l, size-a) // the bytes before the end read alone
		}
		pages = append(pages, physmem.Range{Addr: addr + off, Buf: buf[off : off+l]})
		off += l
	}
	err := c.R.ReadPhys(pages)
	if err != nil && !errors.Is(err, physmem.ErrPartial) {
		for i := range pages {
			if pages[i].Err == nil {
				pages[i].Err = err
			}
		}
	}
	rng := rand.New(rand.NewPCG(c.Seed, addr))
	maxLen := max(c.Max, 1)
	count := 0
	for p := 0; p < len(pages); {
		if pages[p].Err != nil {
			s := physmem.Segment{Addr: pages[p].Addr, Len: uint64(len(pages[p].Buf)), Err: pages[p].Err}
			if !visit(s) {
				return partial(pages)
			}
			p++
			continue
		}
		// a segment of good pages: from pages[p].Addr, up to maxLen bytes
		start := pages[p].Addr
		want := uint64(1 + rng.IntN(maxLen))
		end := start
		for p < len(pages) && pages[p].Err == nil && end-start < want {
			end = min(pages[p].Addr+uint64(len(pages[p].Buf)), start+want)
			if end == pages[p].Addr+uint64(len(pages[p].Buf)) {
				p++
			} else {
				pages[p].Buf = pages[p].Buf[end-pages[p].Addr:]
				pages[p].Addr = end
			}
		}
		data := buf[start-addr : end-addr]
		count++
		if c.RetryEvery > 0 && count%c.RetryEvery == 0 && len(data) > 1 {
			wrong := append(append([]byte(nil), data[1:]...), data[0])
			if !visit(physmem.Segment{Addr: start, Len: uint64(len(wrong)), Data: wrong}) {
				return partial(pages)
			}
			if !visit(physmem.Segment{Addr: start, Len: uint64(len(data)), Data: data, Retry: true}) {
				return partial(pages)
			}
			continue
		}
		seg := physmem.Segment{Addr: start, Len: uint64(len(data)), Data: data}
		if allZero(data) {
			seg.Data, seg.Zero = nil, true
		}
		if !visit(seg) {
			return partial(pages)
		}
	}
	return partial(pages)
}

func partial(pages []physmem.Range) error {
	for _, p := range pages {
		if p.Err != nil {
			return fmt.Errorf("choppy lend: %w", physmem.ErrPartial)
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
