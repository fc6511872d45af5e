//go:build linux

package image

import (
	"fmt"
	"io"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// dropBehindMin is the read size from which a read is a scan: it goes
// through pread and its pages leave the page cache right after, so walking a
// guest larger than RAM does not flood the cache. Smaller reads (page-table
// walks, structures) use the mapping and keep their pages cached.
const dropBehindMin = 1 << 20

// mapFile maps size bytes of f read-only and shared. The mapping is the
// fastest way to serve many small reads (page-table entries); a file that
// shrinks under it would fault, which images and decompressed dumps never do.
// With dropBehind, large reads bypass the mapping and drop their pages from
// the page cache once copied.
func mapFile(f *os.File, size int64, dropBehind bool) (io.ReaderAt, func() error, error) {
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
	unmap := func() error { return unix.Munmap(b) }
	if dropBehind {
		return fileSource{mem: memory(b), f: f}, unmap, nil
	}
	return memory(b), unmap, nil
}

// fileSource serves small reads from the mapping and large ones by pread
// with drop-behind.
type fileSource struct {
	mem memory
	f   *os.File
}

func (s fileSource) ReadAt(p []byte, off int64) (int, error) {
	if len(p) < dropBehindMin {
		return s.mem.ReadAt(p, off)
	}
	n, err := s.f.ReadAt(p, off)
	if n > 0 {
		_ = unix.Fadvise(int(s.f.Fd()), off, int64(n), unix.FADV_DONTNEED)
	}
	return n, err
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
