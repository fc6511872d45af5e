//go:build linux

package image

import (
	"fmt"
	"io"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only and shared. The mapping is the
// fastest way to serve many small reads (page-table entries); a file that
// shrinks under it would fault, which images and decompressed dumps never do.
func mapFile(f *os.File, size int64) (io.ReaderAt, func() error, error) {
	if size == 0 {
		return memory{}, func() error { return nil }, nil
	}
	if size < 0 || uint64(size) > math.MaxInt {
		return nil, nil, fmt.Errorf("image: map %s: size %d too large", f.Name(), size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("image: map %s: %w", f.Name(), err)
	}
	return memory(b), func() error { return unix.Munmap(b) }, nil
}

// anonFile returns an unnamed file in memory (memfd) to decompress into:
// its pages live outside the Go heap and vanish on close.
func anonFile(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("image: memfd %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}
