package wire

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxIOV is the kernel's IOV_MAX.
const maxIOV = 1024

// readvFull fills bufs (non-empty buffers) with readv(2) on conn's socket,
// waiting through the runtime poller so deadlines still apply. The iovec
// array is built once and advanced in place across partial reads, which are
// the rule for a large reply arriving over TCP. ok is false when conn has
// no file descriptor (TLS, pipes).
func readvFull(conn net.Conn, bufs [][]byte) (ok bool, err error) {
	sc, isSys := conn.(syscall.Conn)
	if !isSys {
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	iovs := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iovs[i].Base = &b[0]
		iovs[i].SetLen(len(b))
	}
	for len(iovs) > 0 {
		iov := iovs[:min(len(iovs), maxIOV)]
		var n uintptr
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, _, errno = unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
				if errno != unix.EINTR {
					return errno != unix.EAGAIN
				}
			}
		})
		if err != nil {
			return true, err
		}
		if errno != 0 {
			return true, os.NewSyscallError("readv", errno)
		}
		if n == 0 {
			return true, io.ErrUnexpectedEOF
		}
		for n > 0 {
			if l := uintptr(iovs[0].Len); n >= l {
				n -= l
				iovs = iovs[1:]
			} else {
				iovs[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iovs[0].Base), n))
				iovs[0].SetLen(int(l - n))
				n = 0
			}
		}
	}
	return true, nil
}
