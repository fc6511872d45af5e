package profile

import (
	"bytes"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// scanChunk is how much physical memory one scan batch reads.
const scanChunk = 16 << 20

// readPhysLenient reads n bytes at addr; pages that cannot be read (holes
// in a dump) read as zeros, so a scan walks past them.
func readPhysLenient(r physmem.Reader, addr uint64, n int) []byte {
	buf := make([]byte, n)
	if r.ReadPhys([]physmem.Range{{Addr: addr, Buf: buf}}) == nil {
		return buf
	}
	var pages []physmem.Range
	for off := 0; off < n; {
		l := 4096 - int((addr+uint64(off))%4096)
		if l > n-off {
			l = n - off
		}
		pages = append(pages, physmem.Range{Addr: addr + uint64(off), Buf: buf[off : off+l]})
		off += l
	}
	_ = r.ReadPhys(pages)
	for _, p := range pages {
		if p.Err != nil {
			clear(p.Buf)
		}
	}
	return buf
}

// scanPhys reports the physical address of every occurrence of each
// pattern in r, in address order per pattern.
func scanPhys(r physmem.Reader, patterns ...[]byte) [][]uint64 {
	hits := make([][]uint64, len(patterns))
	overlap := 0
	for _, p := range patterns {
		overlap = max(overlap, len(p)-1)
	}
	size := r.Size()
	for base := uint64(0); base < size; base += scanChunk {
		n := uint64(scanChunk + overlap)
		if base+n > size {
			n = size - base
		}
		buf := readPhysLenient(r, base, int(n))
		for i, p := range patterns {
			for off := 0; ; {
				j := bytes.Index(buf[off:], p)
				if j < 0 {
					break
				}
				off += j
				// a match inside the overlap belongs to the next chunk
				if off < scanChunk || base+scanChunk >= size {
					hits[i] = append(hits[i], base+uint64(off))
				}
				off++
			}
		}
	}
	return hits
}
