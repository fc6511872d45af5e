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
// as zeros; a match straddling two chunks is seen once, whole. A reader that
// implements Sparse has only its data ranges read: holes cost nothing, so a
// pattern made only of zero bytes is not found in them.
func Scan(r Reader, pattern []byte, visit func(pa uint64) bool) {
	if len(pattern) == 0 {
		return
	}
	size := r.Size()
	chunk := make([]byte, scanChunk+len(pattern)-1)
	sp, sparse := r.(Sparse)
	if !sparse {
		scanRange(r, pattern, 0, size, size, chunk, visit)
		return
	}
	for addr := uint64(0); addr < size; {
		start, end, ok := sp.NextData(addr)
		if !ok || start >= size {
			return
		}
		end = min(max(end, start+1), size)
		if !scanRange(r, pattern, start, end, size, chunk, visit) {
			return
		}
		addr = end
	}
}

// scanRange reports the matches that start in [from, to), reading up to
// len(pattern)-1 bytes past to so that a match straddling it is seen whole.
// It returns false once visit has.
func scanRange(r Reader, pattern []byte, from, to, size uint64, chunk []byte, visit func(pa uint64) bool) bool {
	overlap := uint64(len(pattern) - 1)
	for base := from; base < to; base += scanChunk {
		starts := min(scanChunk, to-base) // matches starting here are this chunk's
		buf := ReadLenient(r, base, chunk[:min(starts+overlap, size-base)])
		for off := 0; ; off++ {
			j := bytes.Index(buf[off:], pattern)
			if j < 0 {
				break
			}
			off += j
			if uint64(off) >= starts {
				break // the next chunk sees it whole
			}
			if !visit(base + uint64(off)) {
				return false
			}
		}
	}
	return true
}
