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
	return readPhysInto(r, addr, make([]byte, n))
}

// readPhysInto is readPhysLenient into a caller's buffer.
func readPhysInto(r physmem.Reader, addr uint64, buf []byte) []byte {
	n := len(buf)
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

// scanPhys calls visit with the physical address of each occurrence of
// pattern in r, in address order, until visit returns false.
func scanPhys(r physmem.Reader, pattern []byte, visit func(pa uint64) bool) {
	overlap := uint64(len(pattern) - 1)
	size := r.Size()
	chunk := make([]byte, scanChunk+overlap)
	for base := uint64(0); base < size; base += scanChunk {
		n := min(scanChunk+overlap, size-base)
		buf := readPhysInto(r, base, chunk[:n])
		for off := 0; ; off++ {
			j := bytes.Index(buf[off:], pattern)
			if j < 0 {
				break
			}
			off += j
			if off >= scanChunk {
				break // the next chunk sees it whole
			}
			if !visit(base + uint64(off)) {
				return
			}
		}
	}
}
