//go:build linux

package uffd

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl numbers and struct layouts of <linux/userfaultfd.h> (x86-64, arm64).
const (
	uffdAPI = 0xAA

	ioctlNew          = 0xAA00     // USERFAULTFD_IOC_NEW on /dev/userfaultfd
	ioctlAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, uffdio_api)
	ioctlRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, uffdio_register)
	ioctlUnregister   = 0x8010AA01 // _IOR(0xAA, 0x01, uffdio_range)
	ioctlWake         = 0x8010AA02 // _IOR(0xAA, 0x02, uffdio_range)
	ioctlCopy         = 0xC028AA03 // _IOWR(0xAA, 0x03, uffdio_copy)
	ioctlZeroPage     = 0xC020AA04 // _IOWR(0xAA, 0x04, uffdio_zeropage)
	ioctlWriteProtect = 0xC018AA06 // _IOWR(0xAA, 0x06, uffdio_writeprotect)

	copyModeWP = 1 << 1

	wpModeWP       = 1 << 0
	wpModeDontWake = 1 << 1
)

type uffdioAPI struct {
	API      uint64
	Features uint64
	Ioctls   uint64
}

type uffdioRange struct {
	Start uint64
	Len   uint64
}

type uffdioRegister struct {
	Range  uffdioRange
	Mode   uint64
	Ioctls uint64
}

type uffdioCopy struct {
	Dst  uint64
	Src  uint64
	Len  uint64
	Mode uint64
	Copy int64 // bytes copied, or -errno
}

type uffdioZeroPage struct {
	Range    uffdioRange
	Mode     uint64
	ZeroPage int64
}

type uffdioWriteProtect struct {
	Range uffdioRange
	Mode  uint64
}

// rawMsg is struct uffd_msg (32 bytes); for a page fault arg0 is the
// flags, arg1 the address and the low half of arg2 the thread id.
type rawMsg struct {
	Event uint8
	_     [7]uint8
	Arg0  uint64
	Arg1  uint64
	Arg2  uint64
}

const rawMsgSize = 32

var _ [rawMsgSize - unsafe.Sizeof(rawMsg{})]byte
var _ [40 - unsafe.Sizeof(uffdioCopy{})]byte
var _ [32 - unsafe.Sizeof(uffdioRegister{})]byte
var _ [32 - unsafe.Sizeof(uffdioZeroPage{})]byte
var _ [24 - unsafe.Sizeof(uffdioWriteProtect{})]byte
var _ [24 - unsafe.Sizeof(uffdioAPI{})]byte

// FD is an initialised userfaultfd (UFFDIO_API done). Its methods are safe
// for concurrent use; Close must not race with them.
type FD struct {
	fd       int
	features uint64
	closed   atomic.Bool
}

// New creates a non-blocking, close-on-exec userfaultfd that handles faults
// from user and kernel mode alike, and enables features.
func New(features uint64) (*FD, error) { return NewFlags(features, 0) }

// NewFlags is New with extra userfaultfd(2) flags, such as UserModeOnly.
func NewFlags(features uint64, flags int) (*FD, error) {
	flags |= unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := create(flags)
	if err != nil {
		return nil, err
	}
	api := uffdioAPI{API: uffdAPI, Features: features}
	if err := ioctl(fd, ioctlAPI, unsafe.Pointer(&api)); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("userfaultfd api with features %#x: kernel refuses them: %w", features, ErrUnsupported)
		}
		return nil, fmt.Errorf("userfaultfd api: %w", err)
	}
	return &FD{fd: fd, features: api.Features}, nil
}

func create(flags int) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, uintptr(flags), 0, 0)
	if errno == 0 {
		return int(fd), nil
	}
	first := errno
	// The device works where the syscall is restricted
	// (vm.unprivileged_userfaultfd=0) but /dev/userfaultfd is accessible.
	dev, err := unix.Open("/dev/userfaultfd", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		defer unix.Close(dev)
		fd, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(dev), ioctlNew, uintptr(flags))
		if errno == 0 {
			return int(fd), nil
		}
	}
	switch first {
	case unix.ENOSYS, unix.EPERM, unix.EACCES:
		return -1, fmt.Errorf("userfaultfd: %v (and /dev/userfaultfd: %v); allow it with sysctl vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd: %w", first, err, ErrUnsupported)
	}
	return -1, fmt.Errorf("userfaultfd: %w", first)
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// Features are the features the kernel reported at the API handshake.
func (f *FD) Features() uint64 { return f.features }

// Fd is the descriptor, for poll.
func (f *FD) Fd() int { return f.fd }

// Register registers [addr, addr+length) with modes (ModeMissing, ModeWP).
func (f *FD) Register(addr, length uintptr, modes uint64) error {
	r := uffdioRegister{Range: uffdioRange{uint64(addr), uint64(length)}, Mode: modes}
	if err := ioctl(f.fd, ioctlRegister, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("userfaultfd register %#x+%#x mode %#x: %w", addr, length, modes, err)
	}
	return nil
}

// Unregister undoes Register for the range.
func (f *FD) Unregister(addr, length uintptr) error {
	r := uffdioRange{uint64(addr), uint64(length)}
	if err := ioctl(f.fd, ioctlUnregister, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("userfaultfd unregister %#x+%#x: %w", addr, length, err)
	}
	return nil
}

// Copy atomically installs src (whole pages) at dst and wakes the threads
// waiting there; with wp the new pages start write-protected. Pages that
// are already present are left alone (EEXIST is success) and their waiters
// woken.
func (f *FD) Copy(dst uintptr, src []byte, wp bool) error {
	if len(src) == 0 || len(src)%PageSize != 0 {
		return fmt.Errorf("userfaultfd copy to %#x: length %d is not whole pages: %w", dst, len(src), unix.EINVAL)
	}
	var mode uint64
	if wp {
		mode = copyModeWP
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(src)))
	defer runtime.KeepAlive(src)
	return f.fill("copy", dst, uintptr(len(src)), func(off uintptr) (int64, error) {
		c := uffdioCopy{Dst: uint64(dst + off), Src: uint64(base + off), Len: uint64(uintptr(len(src)) - off), Mode: mode}
		err := ioctl(f.fd, ioctlCopy, unsafe.Pointer(&c))
		return c.Copy, err
	})
}

// ZeroPage installs zero pages over [dst, dst+length) and wakes waiters;
// pages already present are success, as for Copy.
func (f *FD) ZeroPage(dst, length uintptr) error {
	return f.fill("zeropage", dst, length, func(off uintptr) (int64, error) {
		z := uffdioZeroPage{Range: uffdioRange{uint64(dst + off), uint64(length - off)}}
		err := ioctl(f.fd, ioctlZeroPage, unsafe.Pointer(&z))
		return z.ZeroPage, err
	})
}

// fill runs a page-installing ioctl (COPY, ZEROPAGE) over [dst, dst+n)
// until every page is in: call installs from offset off on and reports the
// bytes it did. Partial progress goes on from where it stopped; a page
// already present (EEXIST) is skipped with its waiters woken; EAGAIN and
// EINTR are retried.
func (f *FD) fill(op string, dst, n uintptr, call func(off uintptr) (int64, error)) error {
	for done := uintptr(0); done < n; {
		did, err := call(done)
		switch {
		case err == nil:
			return nil
		case did > 0:
			done += uintptr(did)
		case err == unix.EEXIST:
			if werr := f.Wake(dst+done, PageSize); werr != nil {
				return werr
			}
			done += PageSize
		case err == unix.EAGAIN || err == unix.EINTR:
		default:
			return fmt.Errorf("userfaultfd %s %#x+%#x: %w", op, dst+done, n-done, err)
		}
	}
	return nil
}

// WriteProtect sets (protect) or clears write protection on the range.
// Clearing wakes the threads waiting on a WP fault there unless dontWake.
func (f *FD) WriteProtect(addr, length uintptr, protect bool, dontWake bool) error {
	var mode uint64
	if protect {
		mode |= wpModeWP
	}
	if dontWake {
		mode |= wpModeDontWake
	}
	w := uffdioWriteProtect{Range: uffdioRange{uint64(addr), uint64(length)}, Mode: mode}
	for {
		err := ioctl(f.fd, ioctlWriteProtect, unsafe.Pointer(&w))
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("userfaultfd writeprotect %#x+%#x protect=%v: %w", addr, length, protect, err)
		}
		return nil
	}
}

// Wake wakes the threads waiting on faults in the range.
func (f *FD) Wake(addr, length uintptr) error {
	r := uffdioRange{uint64(addr), uint64(length)}
	if err := ioctl(f.fd, ioctlWake, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("userfaultfd wake %#x+%#x: %w", addr, length, err)
	}
	return nil
}

// Read reads up to len(msgs) pending messages without blocking; it returns
// 0 and no error when none is pending.
func (f *FD) Read(msgs []Msg) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	var raw [64]rawMsg
	want := min(len(msgs), len(raw))
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&raw[0])), want*rawMsgSize)
	for {
		n, err := unix.Read(f.fd, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("userfaultfd read: %w", err)
		}
		cnt := n / rawMsgSize
		for i := range cnt {
			msgs[i] = Msg{Event: raw[i].Event, Flags: raw[i].Arg0, Addr: raw[i].Arg1, TID: uint32(raw[i].Arg2)}
		}
		return cnt, nil
	}
}

// Close closes the descriptor; threads still waiting on faults in a
// registered range then get SIGBUS-free retries (the kernel wakes them and
// the range behaves as unregistered).
func (f *FD) Close() error {
	if f == nil || !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	return unix.Close(f.fd)
}

// Adopt takes over fd, a userfaultfd whose UFFDIO_API handshake was done
// elsewhere (by the process that created it and registered its own
// mapping, then passed it by SCM_RIGHTS) with features. The FD owns fd.
func Adopt(fd int, features uint64) (*FD, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("userfaultfd adopt fd %d: %w", fd, err)
	}
	return &FD{fd: fd, features: features}, nil
}
