//go:build linux

package fabric

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const wordSize = 8

// The seals every location map carries: its size is fixed for life, so a
// reader's mapping can never fault past a truncated end.
const locMapSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// CreateLocationMap makes a location map of gfns words, all zero (local,
// generation 0), in a new sealed memfd.
func CreateLocationMap(gfns uint64) (*LocationMap, error) {
	if gfns == 0 || gfns > (1<<62)/wordSize {
		return nil, fmt.Errorf("create location map of %d gfns: %w", gfns, ErrGFNRange)
	}
	fd, err := unix.MemfdCreate("vmemtrans-locmap", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("create location map: memfd: %w", err)
	}
	file := os.NewFile(uintptr(fd), "vmemtrans-locmap")
	size := int64(gfns * wordSize)
	if err := unix.Ftruncate(fd, size); err != nil {
		file.Close()
		return nil, fmt.Errorf("create location map: size %d: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, locMapSeals); err != nil {
		file.Close()
		return nil, fmt.Errorf("create location map: seal: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("create location map: mmap: %w", err)
	}
	return &LocationMap{file: file, mem: mem, words: wordsOf(mem)}, nil
}

// ReadOnlyFile reopens the memfd read-only (through /proc/self/fd), the
// descriptor to pass to readers: it cannot be mapped writable.
func (m *LocationMap) ReadOnlyFile() (*os.File, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", m.file.Fd()), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen location map read-only: %w", err)
	}
	return f, nil
}

// Close unmaps the map and closes the memfd; readers keep their mappings.
func (m *LocationMap) Close() error {
	if m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem, m.words = nil, nil
	return errors.Join(err, m.file.Close())
}

// OpenLocationMapReadOnly maps the location map behind fd read-only. fd
// may be read-only (it should be) and stays the caller's to close; the
// mapping outlives it. The map must carry the shrink seal CreateLocationMap
// puts on it, so that no writer can pull the mapping from under a reader.
func OpenLocationMapReadOnly(fd int) (*LocationView, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("open location map: stat fd %d: %w", fd, err)
	}
	if st.Size <= 0 || st.Size%wordSize != 0 {
		return nil, fmt.Errorf("open location map: size %d is not a whole number of words: %w", st.Size, ErrBadLocation)
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_SHRINK == 0 {
		return nil, fmt.Errorf("open location map: fd %d is not a sealed location map (seals %#x, %v): %w", fd, seals, err, ErrBadLocation)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("open location map: mmap: %w", err)
	}
	return &LocationView{mem: mem, words: wordsOf(mem)}, nil
}

// Close unmaps the view.
func (v *LocationView) Close() error {
	if v.mem == nil {
		return nil
	}
	err := unix.Munmap(v.mem)
	v.mem, v.words = nil, nil
	return err
}

// wordsOf views a page-aligned mapping as words, for atomic access.
func wordsOf(mem []byte) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(mem))), len(mem)/wordSize)
}
