//go:build !linux

package uffd

import "fmt"

// FD is an initialised userfaultfd; on this OS none can be made.
type FD struct{}

// New always fails with ErrUnsupported on this OS.
func New(features uint64) (*FD, error) { return NewFlags(features, 0) }

// NewFlags always fails with ErrUnsupported on this OS.
func NewFlags(features uint64, flags int) (*FD, error) {
	return nil, fmt.Errorf("userfaultfd: %w on this operating system", ErrUnsupported)
}

func errNone() error { return fmt.Errorf("userfaultfd: %w", ErrUnsupported) }

// Features reports nothing on this OS.
func (f *FD) Features() uint64 { return 0 }

// Register fails with ErrUnsupported.
func (f *FD) Register(addr, length uintptr, modes uint64) error { return errNone() }

// Unregister fails with ErrUnsupported.
func (f *FD) Unregister(addr, length uintptr) error { return errNone() }

// Copy fails with ErrUnsupported.
func (f *FD) Copy(dst uintptr, src []byte, wp bool) error { return errNone() }

// ZeroPage fails with ErrUnsupported.
func (f *FD) ZeroPage(dst, length uintptr) error { return errNone() }

// WriteProtect fails with ErrUnsupported.
func (f *FD) WriteProtect(addr, length uintptr, protect bool, dontWake bool) error { return errNone() }

// Wake fails with ErrUnsupported.
func (f *FD) Wake(addr, length uintptr) error { return errNone() }

// Read fails with ErrUnsupported.
func (f *FD) Read(msgs []Msg) (int, error) { return 0, errNone() }

// Fd is -1.
func (f *FD) Fd() int { return -1 }

// Close does nothing.
func (f *FD) Close() error { return nil }

// Adopt takes over a userfaultfd made elsewhere; not available here.
func Adopt(fd int, features uint64) (*FD, error) { return nil, errNone() }
