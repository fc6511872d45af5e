package fabric

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the step in which cache memory is made ready.
const hugePage = 2 << 20

// newCacheArena reserves n bytes of cache memory outside the Go heap,
// aligned to huge pages and advised to use them. In a VM a 4 KiB fault
// costs 6-13 µs (zeroing, the host backing the page), against 0.25-0.7 µs
// per 4 KiB on a 2 MiB fault, measured here: a cache filled with 4 KiB
// faults cost a first scan more than its fetches. Nothing is faulted in
// here; populate does that, off the read path.
func newCacheArena(n int) (*cacheArena, error) {
	size := (n + hugePage - 1) / hugePage * hugePage
	raw, err := unix.Mmap(-1, 0, size+hugePage, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("adaptive cache memory of %d bytes: %w", size, err)
	}
	skip := 0
	if rem := uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % hugePage; rem != 0 {
		skip = int(hugePage - rem)
	}
	mem := raw[skip : skip+size : skip+size]
	// Without transparent huge pages this is refused and 4 KiB pages serve.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	return &cacheArena{mem: mem, release: func() { _ = unix.Munmap(raw) }}, nil
}

// populate faults b in for writing: one call for the page tables
// (MADV_POPULATE_WRITE, Linux 5.14+; older kernels refuse and the writes
// below fault instead), then a write to every 4 KiB, because a host that
// backs guest memory lazily backs a page only on a write.
func populate(b []byte) {
	_ = unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	for i := 0; i < len(b); i += PageSize {
		b[i] = 0
	}
}
