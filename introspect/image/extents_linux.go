//go:build linux

package image

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileExtents lists the data runs of f's first size bytes with
// SEEK_DATA/SEEK_HOLE; a file system without them reports one run.
func fileExtents(f *os.File, size int64) ([]extent, error) {
	fd := int(f.Fd())
	var exts []extent
	for pos := int64(0); pos < size; {
		data, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from pos to the end
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []extent{{0, uint64(size)}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("image: seek data in %s: %w", f.Name(), err)
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("image: seek hole in %s: %w", f.Name(), err)
		}
		hole = min(hole, size)
		if len(exts) == maxExtents-1 {
			hole = size
		}
		exts = append(exts, extent{uint64(data), uint64(hole)})
		pos = hole
	}
	return exts, nil
}
