package physmem

import "bytes"

// scanChunk is how much Scan reads per batch: large enough that the
// per-batch cost vanishes, small enough not to hold a guest's RAM twice.
const scanChunk = 16 << 20

// ReadLenient fills buf from addr; pages that cannot be read (holes in a
// dump, unbacked ranges) read as zeros, so scans and probes walk past them.
// It returns buf.
func ReadLenient(r Reader, addr uint64, buf []byte) []byte {
	if r.ReadPhys([]Range{{Addr: addr, Buf: buf}}) == nil {
		return buf
	}
	var pages []Range
	for off := 0; off < len(buf); {
		l := min(len(buf)-off, 4096-int((addr+uint64(off))%4096))
		pages = append(pages, Range{Addr: addr + uint64(off), Buf: buf[off : off+l]})
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

// Scan calls visit with the physical address of each occurrence of pattern
// in r, in address order, until visit returns false. Unreadable pages read
// as zeros; a match straddling two chunks is seen once, whole.
func Scan(r Reader, pattern []byte, visit func(pa uint64) bool) {
	if len(pattern) == 0 {
		return
	}
	overlap := uint64(len(pattern) - 1)
	size := r.Size()
	chunk := make([]byte, scanChunk+overlap)
	for base := uint64(0); base < size; base += scanChunk {
		buf := ReadLenient(r, base, chunk[:min(scanChunk+overlap, size-base)])
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
