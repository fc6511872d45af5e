package fabric

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on x86-64.
const hugePage = 2 << 20

// newCacheChunk allocates n bytes of cache memory, asks for transparent
// huge pages on it and faults it in at once: the cache fills once with
// every remote page a scan reads, and a page fault per 4 KiB of cache was
// most of the difference between filling the cache and proxy paging
// (faults are dear, above all in a guest). Kernels without THP or
// MADV_POPULATE_WRITE ignore the advice.
func newCacheChunk(n int) []byte {
	b := make([]byte, n)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + hugePage - 1) &^ (hugePage - 1)
	hi := (start + uintptr(n)) &^ (hugePage - 1)
	if hi > lo {
		_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_HUGEPAGE)
	}
	// Fault the chunk in with one call (Linux 5.14+; older kernels refuse
	// and the pages fault in one by one as they are filled).
	_ = unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	return b
}
