package control

import (
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxIOV is the kernel's IOV_MAX.
const maxIOV = 1024

// readvFull fills bufs (non-empty buffers; the slice is consumed) with
// readv(2) on conn's socket, waiting through the runtime poller so deadlines
// still apply. ok is false when conn has no file descriptor (TLS, pipes).
func readvFull(conn net.Conn, bufs [][]byte) (ok bool, err error) {
	sc, isSys := conn.(syscall.Conn)
	if !isSys {
		return false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	for len(bufs) > 0 {
		iov := bufs[:min(len(bufs), maxIOV)]
		var n int
		var serr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, serr = unix.Readv(int(fd), iov)
				if serr != unix.EINTR {
					return serr != unix.EAGAIN
				}
			}
		})
		if err != nil {
			return true, err
		}
		if serr != nil {
			return true, os.NewSyscallError("readv", serr)
		}
		if n == 0 {
			return true, io.ErrUnexpectedEOF
		}
		for n > 0 {
			if n >= len(bufs[0]) {
				n -= len(bufs[0])
				bufs = bufs[1:]
			} else {
				bufs[0] = bufs[0][n:]
				n = 0
			}
		}
	}
	return true, nil
}
