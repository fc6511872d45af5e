package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pacing of a serial port's reopen: a port whose host side is not
// connected reads end-of-file at once, so reopening is paced, doubling up
// to serialMaxWait while it stays so.
const (
	serialMinWait = 100 * time.Millisecond
	serialMaxWait = 500 * time.Millisecond
)

// serialAppear is how long a port that does not exist yet is waited for.
var serialAppear = 30 * time.Second

// virtioPortsDir is where udev links virtio-serial ports by name.
const virtioPortsDir = "/dev/virtio-ports/"

// resolvePort maps /dev/virtio-ports/NAME to its /dev/vportNpM through
// sysfs when the link is missing; any other path is returned as is.
func resolvePort(path string) string {
	name, ok := strings.CutPrefix(path, virtioPortsDir)
	if !ok {
		return path
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	dirs, _ := filepath.Glob("/sys/class/virtio-ports/vport*")
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "name")); err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(d)
		}
	}
	return path
}

// ServeSerial serves the virtio-serial port at path (a character device:
// one stream, the host's end being QEMU's chardev) as one long-lived
// connection, reopened whenever the host side hangs up or a session ends,
// until ctx ends. The handshake time starts at the host's first byte.
//
// A port named /dev/virtio-ports/NAME is found through sysfs where no udev
// made that link; a port that does not exist yet (its driver still
// loading) is waited for up to serialAppear.
func (s *Server) ServeSerial(ctx context.Context, path string) error {
	wait := serialMinWait
	start := time.Now()
	for {
		f, err := os.OpenFile(resolvePort(path), os.O_RDWR, 0)
		if err != nil {
			if errors.Is(err, os.ErrPermission) || (errors.Is(err, os.ErrNotExist) && time.Since(start) > serialAppear) {
				return fmt.Errorf("agent serial port %s: %w", path, err)
			}
			if !errors.Is(err, os.ErrNotExist) {
				s.cfg.Log.Warn().Err(err).Str("port", path).Msg("agent: cannot open the serial port; retrying")
			}
		} else {
			stop := context.AfterFunc(ctx, func() { f.Close() })
			start := time.Now()
			err = s.ServeConn(&fileConn{f: f, name: path}, true)
			stop()
			if errors.Is(err, ErrServerClosed) {
				return err
			}
			if time.Since(start) > serialMaxWait {
				wait = serialMinWait
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, serialMaxWait)
	}
}

// fileConn is a character device as a net.Conn.
type fileConn struct {
	f    *os.File
	name string
}

type fileAddr string

func (a fileAddr) Network() string { return "file" }
func (a fileAddr) String() string  { return string(a) }

func (c *fileConn) Read(b []byte) (int, error)  { return c.f.Read(b) }
func (c *fileConn) Write(b []byte) (int, error) { return c.f.Write(b) }
func (c *fileConn) Close() error {
	err := c.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
func (c *fileConn) LocalAddr() net.Addr  { return fileAddr(c.name) }
func (c *fileConn) RemoteAddr() net.Addr { return fileAddr(c.name) }

// Deadlines work where the device is pollable; elsewhere reads block.
func (c *fileConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *fileConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *fileConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }
