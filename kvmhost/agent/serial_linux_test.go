//go:build linux

package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// rawPTY opens a pseudo-terminal pair in raw mode (a byte stream, as a
// virtio-serial port is) and returns the master and the slave's path. The
// test keeps a slave descriptor open, so the master outlives the agent's
// reopens.
func rawPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var cerr error
	_ = rc.Control(func(fd uintptr) {
		if cerr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); cerr == nil {
			n, cerr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	})
	if cerr != nil {
		t.Fatal(cerr)
	}
	path := "/dev/pts/" + itoa(n)
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, path
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// The agent serves a serial port as one long-lived stream: the host side
// talks through it, a refused session (wrong key) makes the agent reopen
// the port, and the next host connection on the same stream is served.
func TestServeSerial(t *testing.T) {
	m, path := rawPTY(t)
	tc := &fakeToucher{ramEnd: 100}
	srv := newTestServer(t, tc, func(c *ServerConfig) { c.HandshakeTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeSerial(ctx, path) }()
	host := &fileConn{f: m, name: "ptmx"}

	bad := ClientConfig{Key: bytes.Repeat([]byte{3}, 32), Log: zerolog.Nop()}
	if _, err := NewClient(context.Background(), &noClose{host}, bad); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("wrong key over the port: %v", err)
	}
	// A pseudo-terminal has no hang-up to tell the agent that this client
	// gave up: its session ends at its handshake timeout, leaving an error
	// frame in the stream, which the next client skips.
	time.Sleep(400 * time.Millisecond)

	c, err := NewClient(context.Background(), &noClose{host}, ClientConfig{Key: testKey, Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("second session on the same stream: %v", err)
	}
	if errs := c.MakeResident(context.Background(), []fabric.GFN{1, 2, 500}); errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrNotRAM) {
		t.Fatalf("touch over the port: %v", errs)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ServeSerial ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeSerial did not end with its context")
	}
}

// noClose keeps the shared host end open when a client closes its connection.
type noClose struct{ *fileConn }

func (noClose) Close() error { return nil }

// A port that never appears fails after the wait, naming the port; names
// outside /dev/virtio-ports are taken as they are.
func TestServeSerialMissingPort(t *testing.T) {
	old := serialAppear
	serialAppear = 200 * time.Millisecond
	defer func() { serialAppear = old }()
	srv := newTestServer(t, &fakeToucher{}, nil)
	path := "/dev/virtio-ports/org.vmemtrans.no-such-port"
	if got := resolvePort(path); got != path {
		t.Fatalf("a port no sysfs entry names resolved to %s", got)
	}
	if got := resolvePort("/tmp/x"); got != "/tmp/x" {
		t.Fatalf("a plain path resolved to %s", got)
	}
	start := time.Now()
	err := srv.ServeSerial(context.Background(), path)
	if !errors.Is(err, os.ErrNotExist) || time.Since(start) < serialAppear {
		t.Fatalf("missing port: %v after %v", err, time.Since(start))
	}
}
