package profile

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// readPhysLenient reads n bytes at addr; pages that cannot be read (holes
// in a dump) read as zeros, so a scan walks past them.
func readPhysLenient(r physmem.Reader, addr uint64, n int) []byte {
	return physmem.ReadLenient(r, addr, make([]byte, n))
}

// withPhys calls use with the n bytes at addr: in place when r lends them
// as one piece (a mapped or decompressed image), else a lenient copy. A
// copy of megabytes costs more in faulting its fresh pages in than in
// copying; the kallsyms tables and the BTF blob are decoded where they
// lie. use must not keep b nor read r, and may be called again with the
// bytes as they are now (a lender's retry), its last result counting.
func withPhys(r physmem.Reader, addr uint64, n int, use func(b []byte) error) error {
	if l, ok := r.(physmem.Lender); ok {
		lent, err := false, error(nil)
		_ = l.LendPhys(addr, uint64(n), func(s physmem.Segment) bool {
			if s.Err != nil || s.Zero || s.Addr != addr || s.Len != uint64(n) {
				return false // in pieces, or zeros without bytes: read below
			}
			lent, err = true, use(s.Data)
			return true
		})
		if lent {
			return err
		}
	}
	return use(readPhysLenient(r, addr, n))
}

// scanChunk is how much scanPatterns reads at a time.
const scanChunk = 16 << 20

type patternHit struct {
	i  int    // pattern index
	at uint64 // physical address
}

// scanPatterns visits every occurrence of any of the patterns in physical
// address order (pattern index and address) in one pass over r, until
// visit returns false: the first of several ways to find something wins
// without reading memory twice. A reader that lends its memory is
// searched in place; visit runs between chunks, so it may read r.
func scanPatterns(r physmem.Reader, patterns [][]byte, visit func(i int, pa uint64) bool) {
	overlap := 0
	for _, p := range patterns {
		overlap = max(overlap, len(p)-1)
	}
	size := r.Size()
	l, lends := r.(physmem.Lender)
	var chunk []byte
	if !lends {
		chunk = make([]byte, scanChunk+overlap)
	}
	for base := uint64(0); base < size; base += scanChunk {
		var hits []patternHit
		if lends {
			hits = lentHits(l, patterns, base, min(base+scanChunk, size), size, overlap)
		} else {
			buf := physmem.ReadLenient(r, base, chunk[:min(uint64(scanChunk+overlap), size-base)])
			hits = findHits(nil, patterns, buf, base, base, base+scanChunk, 0)
		}
		slices.SortStableFunc(hits, func(a, b patternHit) int { return cmp.Compare(a.at, b.at) })
		for _, h := range hits {
			if !visit(h.i, h.at) {
				return
			}
		}
	}
}

// findHits appends the matches in win (at physical address at) that start
// in [from, to) and end past its first seam bytes; with seam > 0 they must
// also start in those bytes (win is a stitch of two pieces, and each
// piece's own search finds the rest).
func findHits(hits []patternHit, patterns [][]byte, win []byte, at, from, to uint64, seam int) []patternHit {
	for i, p := range patterns {
		for off := 0; ; off++ {
			j := bytes.Index(win[off:], p)
			if j < 0 {
				break
			}
			off += j
			if seam > 0 && off >= seam {
				break
			}
			if a := at + uint64(off); off+len(p) > seam && a >= from && a < to {
				hits = append(hits, patternHit{i, a})
			}
		}
	}
	return hits
}

// lentHits finds the matches that start in [from, to) in the memory l lends,
// reading up to overlap bytes past to, so that a match straddling to is
// seen whole. Pieces need not be contiguous in memory: a match across two
// is looked for in a stitch of the end of one and the start of the next.
// Unreadable memory counts as zeros, as a lenient read gives it; a Zero
// segment is searched no further than its first and last bytes.
func lentHits(l physmem.Lender, patterns [][]byte, from, to, size uint64, overlap int) []patternHit {
	var hits []patternHit
	var tail, stitch []byte // tail: the last (up to overlap) bytes before tailEnd
	var tailEnd uint64
	var saved struct { // before the last piece, to undo it on a retry
		hits    int
		tail    []byte
		tailEnd uint64
	}
	end := min(to+uint64(overlap), size)
	_ = l.LendPhys(from, end-from, func(s physmem.Segment) bool {
		if s.Retry {
			hits, tail, tailEnd = hits[:saved.hits], append(tail[:0], saved.tail...), saved.tailEnd
		} else {
			saved.hits, saved.tail, saved.tailEnd = len(hits), append(saved.tail[:0], tail...), tailEnd
		}
		data := s.Data
		if s.Err != nil || s.Zero {
			// Zeros, shown without their bytes: only those next to other
			// bytes can be part of a match.
			data = make([]byte, min(s.Len, uint64(overlap)))
		}
		if tailEnd != s.Addr {
			tail = tail[:0]
		}
		if len(tail) > 0 {
			stitch = append(append(stitch[:0], tail...), data[:min(overlap, len(data))]...)
			hits = findHits(hits, patterns, stitch, s.Addr-uint64(len(tail)), from, to, len(tail))
		}
		hits = findHits(hits, patterns, data, s.Addr, from, to, 0)
		if len(data) < overlap {
			tail = append(tail, data...)
			tail = tail[max(0, len(tail)-overlap):]
		} else {
			tail = append(tail[:0], data[len(data)-overlap:]...)
		}
		tailEnd = s.Addr + s.Len
		return true
	})
	return hits
}
