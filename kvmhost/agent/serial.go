package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Pacing of a serial port's reopen: a port whose host side is not
// connected reads end-of-file at once, so reopening is paced, doubling up
// to serialMaxWait while it stays so.
const (
	serialMinWait = 100 * time.Millisecond
	serialMaxWait = 500 * time.Millisecond
)

// ServeSerial serves the virtio-serial port at path (a character device:
// one stream, the host's end being QEMU's chardev) as one long-lived
// connection, reopened whenever the host side hangs up or a session ends,
// until ctx ends. The handshake time starts at the host's first byte.
func (s *Server) ServeSerial(ctx context.Context, path string) error {
	wait := serialMinWait
	for {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("agent serial port %s: %w", path, err)
			}
			s.cfg.Log.Warn().Err(err).Str("port", path).Msg("agent: cannot open the serial port; retrying")
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
