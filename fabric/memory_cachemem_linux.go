package fabric

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on x86-64.
const hugePage = 2 << 20

// newCacheChunk allocates n bytes of cache memory and asks for transparent
// huge pages on it before it is first touched: the cache fills once with
// every remote page a scan reads, and one fault per 2 MiB instead of per
// 4 KiB is most of the difference between filling the cache and proxy
// paging (faults are dear in a guest). A kernel without THP ignores it.
func newCacheChunk(n int) []byte {
	b := make([]byte, n)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + hugePage - 1) &^ (hugePage - 1)
	hi := (start + uintptr(n)) &^ (hugePage - 1)
	if hi > lo {
		_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_HUGEPAGE)
	}
	return b
}
