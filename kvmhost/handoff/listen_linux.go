//go:build linux

package handoff

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is the socket the preload library connects to.
type Listener struct {
	l    *net.UnixListener
	path string
}

// Listen binds path (replacing a stale socket there) with mode 0600.
func Listen(path string) (*Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == os.ModeSocket {
		_ = os.Remove(path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("guest ram handoff socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("guest ram handoff socket %s: %w", path, err)
	}
	return &Listener{l: l, path: path}, nil
}

// Path is where the socket is bound.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket.
func (l *Listener) Close() error { return l.l.Close() }

// Conn is one handoff: the Space received and the connection to ack on.
type Conn struct {
	Space
	c *net.UnixConn
}

// Accept waits for a VMM (until ctx ends) and receives its guest RAM.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	stop := context.AfterFunc(ctx, func() { l.l.SetDeadline(time.Now()) })
	defer stop()
	c, err := l.l.AcceptUnix()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("guest ram handoff: waiting for the vmm: %w", ctx.Err())
		}
		return nil, fmt.Errorf("guest ram handoff: accept: %w", err)
	}
	h, err := receive(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("guest ram handoff: %w", err)
	}
	return h, nil
}

func receive(c *net.UnixConn) (*Conn, error) {
	if err := checkPeer(c); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, MessageSize)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(b, oob)
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	fds, ferr := parseRights(oob[:oobn])
	h := &Conn{c: c}
	if len(fds) > 0 {
		h.UFFD = os.NewFile(uintptr(fds[0]), "vmm-userfaultfd")
	}
	if len(fds) > 1 {
		h.RAM = os.NewFile(uintptr(fds[1]), "vmm-guest-ram")
	}
	for _, fd := range fds[min(2, len(fds)):] {
		unix.Close(fd)
	}
	fail := func(err error) (*Conn, error) {
		h.Space.Close()
		return nil, err
	}
	if ferr != nil {
		return fail(ferr)
	}
	if len(fds) != 2 {
		return fail(fmt.Errorf("%d descriptors, want a userfaultfd and a memfd: %w", len(fds), ErrMessage))
	}
	if n < MessageSize {
		if _, err := io.ReadFull(c, b[n:]); err != nil {
			return fail(fmt.Errorf("read message: %w", err))
		}
	}
	if h.Message, err = ParseMessage(b); err != nil {
		return fail(err)
	}
	if err := checkKinds(h.UFFD, h.RAM, h.Offset+h.Length); err != nil {
		return fail(err)
	}
	return h, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// checkKinds makes sure the descriptors are what they claim: a
// userfaultfd, and a memfd covering the range.
func checkKinds(uf, ram *os.File, end uint64) error {
	if l, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", uf.Fd())); l != "anon_inode:[userfaultfd]" {
		return fmt.Errorf("first descriptor is %q, not a userfaultfd: %w", l, ErrMessage)
	}
	if l, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", ram.Fd())); !strings.HasPrefix(l, "/memfd:") {
		return fmt.Errorf("second descriptor is %q, not a memfd: %w", l, ErrMessage)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(ram.Fd()), &st); err != nil {
		return fmt.Errorf("stat guest ram memfd: %w", err)
	}
	if uint64(st.Size) < end {
		return fmt.Errorf("guest ram memfd of %d bytes ends before the mapping (%#x): %w", st.Size, end, ErrMessage)
	}
	return nil
}

func checkPeer(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var uc *unix.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	if int(uc.Uid) != os.Getuid() {
		return fmt.Errorf("peer uid %d, this runtime runs as %d: %w", uc.Uid, os.Getuid(), ErrPeer)
	}
	return nil
}

// PeerPID is the process that handed its RAM over.
func (h *Conn) PeerPID() int {
	rc, err := h.c.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	_ = rc.Control(func(fd uintptr) {
		if uc, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(uc.Pid)
		}
	})
	return pid
}

// Ack tells the VMM whether the runtime took its RAM (it returns from
// mmap on 0 and exits otherwise) and closes the connection.
func (h *Conn) Ack(accepted bool) error {
	code := []byte{0}
	if !accepted {
		code[0] = 1
	}
	_, err := h.c.Write(code)
	return joinClose(err, h.c.Close())
}

func joinClose(err, cerr error) error {
	if err != nil {
		return fmt.Errorf("guest ram handoff ack: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("guest ram handoff ack: %w", cerr)
	}
	return nil
}
