package profile

import (
	"bytes"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// readPhysLenient reads n bytes at addr; pages that cannot be read (holes
// in a dump) read as zeros, so a scan walks past them.
func readPhysLenient(r physmem.Reader, addr uint64, n int) []byte {
	return physmem.ReadLenient(r, addr, make([]byte, n))
}

// scanChunk is how much scanPatterns reads at a time.
const scanChunk = 16 << 20

// scanPatterns visits every occurrence of any of the patterns in physical
// address order (pattern index and address) in one pass over r, until
// visit returns false: the first of several ways to find something wins
// without reading memory twice.
func scanPatterns(r physmem.Reader, patterns [][]byte, visit func(i int, pa uint64) bool) {
	overlap := 0
	for _, p := range patterns {
		overlap = max(overlap, len(p)-1)
	}
	size := r.Size()
	chunk := make([]byte, scanChunk+overlap)
	type hit struct {
		i   int
		off int
	}
	for base := uint64(0); base < size; base += scanChunk {
		buf := physmem.ReadLenient(r, base, chunk[:min(uint64(scanChunk+overlap), size-base)])
		var hits []hit
		for i, p := range patterns {
			for off := 0; ; off++ {
				j := bytes.Index(buf[off:], p)
				if j < 0 || off+j >= scanChunk {
					break // a match starting past the chunk is the next chunk's
				}
				off += j
				hits = append(hits, hit{i, off})
			}
		}
		for len(hits) > 0 {
			k := 0
			for j, h := range hits {
				if h.off < hits[k].off {
					k = j
				}
			}
			if !visit(hits[k].i, base+uint64(hits[k].off)) {
				return
			}
			hits = append(hits[:k], hits[k+1:]...)
		}
	}
}
