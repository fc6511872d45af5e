package scan

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// newScanBuffer maps n bytes outside the Go heap, aligned to huge pages and
// advised to use them, so filling it costs one fault per 2 MiB instead of
// one per 4 KiB. Where the mapping cannot be made, the Go heap serves.
func newScanBuffer(n int) scanBuffer {
	size := (n + hugePage - 1) / hugePage * hugePage
	raw, err := unix.Mmap(-1, 0, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return scanBuffer{b: make([]byte, n), release: func() {}}
	}
	skip := 0
	if rem := uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % hugePage; rem != 0 {
		skip = int(hugePage - rem)
	}
	b := raw[skip : skip+size : skip+size]
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	return scanBuffer{b: b[:n], release: func() { _ = unix.Munmap(raw) }}
}
