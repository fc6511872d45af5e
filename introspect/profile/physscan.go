package profile

import (
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
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

// scanChunk is how much scanPatterns searches before it visits what it
// found: a search that stops at its first find reads at most this much
// past it. On a compressed image every megabyte searched is one frame
// decompressed; with 16 MiB chunks a search for VMCOREINFO at 19 MiB
// decompressed 13 frames for nothing.
const scanChunk = 1 << 20

// scanPatterns visits every occurrence of any of the patterns in physical
// address order (pattern index and address) in one pass over r, until
// visit returns false: the first of several ways to find something wins
// without reading memory twice. The search is introspect/scan's, a chunk
// at a time (a lender's memory in place), so visit runs between chunks and
// may read r.
func scanPatterns(r physmem.Reader, patterns [][]byte, visit func(i int, pa uint64) bool) {
	overlap := 0
	for _, p := range patterns {
		overlap = max(overlap, len(p)-1)
	}
	size := r.Size()
	for base := uint64(0); base < size; base += scanChunk {
		// read past the chunk so that a match straddling its end is seen
		res, _ := scan.Range(r, patterns, base, min(base+scanChunk+uint64(overlap), size), scan.Options{})
		if res == nil {
			return
		}
		for _, m := range res.Matches {
			if m.Addr < base+scanChunk && !visit(m.Pattern, m.Addr) {
				return
			}
		}
	}
}
