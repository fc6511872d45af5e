//go:build linux

package vmsock

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// peerCred asks the kernel who is on the other end of c.
func peerCred(c *net.UnixConn) (PeerCred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return PeerCred{}, err
	}
	var uc *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return PeerCred{}, err
	}
	if serr != nil {
		return PeerCred{}, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	return PeerCred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}

// sendWithFiles writes b with the descriptors of files attached to its
// first byte, so they arrive with the frame.
func sendWithFiles(c *net.UnixConn, b []byte, files []*os.File) error {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	n, _, err := c.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
	if err != nil {
		return err
	}
	if n < len(b) {
		_, err = c.Write(b[n:])
	}
	return err
}

// maxRecvFDs bounds the descriptors one recvmsg accepts; more is a
// misbehaving peer (the kernel truncates and the call fails).
const maxRecvFDs = 8

// fdConn reads a unix stream with recvmsg, queueing the descriptors that
// arrive with the bytes, in stream order.
type fdConn struct {
	rc    syscall.RawConn
	oob   []byte
	queue []int
}

func newFDConn(c *net.UnixConn) (*fdConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &fdConn{rc: rc, oob: make([]byte, unix.CmsgSpace(maxRecvFDs*4))}, nil
}

// Read implements io.Reader. An interrupted recvmsg is retried; a
// would-block waits in the poller (honouring the read deadline).
func (f *fdConn) Read(b []byte) (int, error) {
	var n, oobn, flags int
	var serr error
	err := f.rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, serr = unix.Recvmsg(int(fd), b, f.oob, unix.MSG_CMSG_CLOEXEC)
			if serr != unix.EINTR {
				break
			}
		}
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if oobn > 0 {
		if perr := f.takeFDs(f.oob[:oobn]); perr != nil && err == nil {
			err = perr
		}
	}
	if err == nil && flags&unix.MSG_CTRUNC != 0 {
		err = fmt.Errorf("runtime socket: descriptors truncated (more than %d in one message): %w", maxRecvFDs, fabric.ErrProtocol)
	}
	if err != nil {
		return 0, err
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// takeFDs queues every descriptor in the control messages.
func (f *fdConn) takeFDs(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("runtime socket: control message: %w: %w", fabric.ErrProtocol, err)
	}
	var bad error
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			bad = errors.Join(bad, err)
			continue
		}
		f.queue = append(f.queue, fds...)
	}
	if bad != nil {
		return fmt.Errorf("runtime socket: control message: %w: %w", fabric.ErrProtocol, bad)
	}
	return nil
}

// popFiles takes the next n queued descriptors as files.
func (f *fdConn) popFiles(n int, names ...string) ([]*os.File, error) {
	if len(f.queue) < n {
		return nil, fmt.Errorf("runtime socket: fds frame announced %d descriptors, %d arrived: %w", n, len(f.queue), fabric.ErrProtocol)
	}
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(f.queue[i]), names[i])
	}
	f.queue = f.queue[n:]
	return files, nil
}

// closeQueued closes descriptors nobody took.
func (f *fdConn) closeQueued() {
	for _, fd := range f.queue {
		unix.Close(fd)
	}
	f.queue = nil
}

// errConnRefused is what connecting to a socket nobody listens on gives.
var errConnRefused error = unix.ECONNREFUSED
