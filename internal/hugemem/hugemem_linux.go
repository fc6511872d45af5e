package hugemem

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Size is the huge-page size memory is aligned to.
const Size = 2 << 20

// Map reserves n bytes, aligned to Size and advised to use huge pages.
func Map(n int) (b []byte, release func(), err error) {
	b, release, err = Reserve(n)
	if err == nil {
		_ = unix.Madvise(b[:cap(b)], unix.MADV_HUGEPAGE)
	}
	return b, release, err
}

// Reserve is Map without the advice: the caller advises the parts it
// fills densely (Advise) and leaves sparse ones in 4 KiB pages.
func Reserve(n int) (b []byte, release func(), err error) {
	size := (n + Size - 1) / Size * Size
	raw, err := unix.Mmap(-1, 0, size+Size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, nil, fmt.Errorf("map %d bytes of anonymous memory: %w", size, err)
	}
	skip := 0
	if rem := uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % Size; rem != 0 {
		skip = int(Size - rem)
	}
	mem := raw[skip : skip+size : skip+size]
	return mem[:n], func() { _ = unix.Munmap(raw) }, nil
}

// Populate faults b in for writing: one call for the page tables
// (MADV_POPULATE_WRITE, Linux 5.14+; older kernels refuse and the writes
// below fault instead), then a write to every 4 KiB, because a host that
// backs guest memory lazily backs a page only on a write.
func Populate(b []byte) {
	_ = unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
}

// Advise asks that the huge-page-aligned part of b be backed by huge
// pages when it is first touched. It is meant for a large Go allocation
// that is fresh (not yet faulted in) and about to be written whole: its
// 4 KiB faults, thousands for a few MiB, become one fault per 2 MiB. The
// advice changes how memory is backed, never what it holds; memory
// already faulted in is left as it is.
func Advise(b []byte) {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (start + Size - 1) &^ (Size - 1)
	hi := (start + uintptr(len(b))) &^ (Size - 1)
	if hi <= lo {
		return
	}
	aligned := unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), lo-start)
	_ = unix.Madvise(unsafe.Slice((*byte)(aligned), hi-lo), unix.MADV_HUGEPAGE)
}
