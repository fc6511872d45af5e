//go:build !linux

package image

import (
	"io"
	"os"
)

// mapFile reads f with pread where mmap is not wired up.
func mapFile(f *os.File, size int64, _ bool) (io.ReaderAt, func() error, error) {
	return f, func() error { return nil }, nil
}

// anonFile returns an already-unlinked temporary file.
func anonFile(name string) (*os.File, error) {
	f, err := os.CreateTemp("", name)
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return f, nil
}
