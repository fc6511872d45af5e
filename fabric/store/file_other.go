//go:build !linux

package store

import "os"

func lockFile(*os.File) error                 { return ErrUnsupported }
func mapShared(*os.File, int) ([]byte, error) { return nil, ErrUnsupported }
func unmap([]byte) error                      { return ErrUnsupported }
func punchHole(*os.File, int64, int64) error  { return ErrUnsupported }
func syncMapping([]byte) error                { return ErrUnsupported }
func allocatedBytes(*os.File) (uint64, error) { return 0, ErrUnsupported }
func prepareWrite([]byte, int, int)           {}
