package vmsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// maxSocketPath is the room for a path in a unix socket address (sun_path).
const maxSocketPath = 108

// ErrInUse reports a socket path where a live server already listens.
var ErrInUse = errors.New("runtime socket in use")

// Listener is a runtime socket bound at a path with mode 0600. Close
// removes the path if it is still this listener's socket.
type Listener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

// Listen binds the runtime socket at path. A dead socket left there by a
// runtime that crashed is replaced; a live one or any other file is an
// error. The socket is bound under a temporary name, made 0600, then
// renamed into place, so no client ever sees it with a wider mode.
func Listen(path string) (*Listener, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if len(tmp) >= maxSocketPath {
		// No room for the temporary name: bind in place and narrow the
		// mode at once; the peer check still refuses other users.
		tmp = path
	}
	_ = os.Remove(tmp)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("runtime socket %s: listen: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		l.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("runtime socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if tmp != path {
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Listener{UnixListener: l, path: path, fi: fi}, nil
}

// clearStale removes a socket at path that nobody serves any more.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("runtime socket %s: exists and is not a socket (%v); choose another --socket path: %w", path, fi.Mode().Type(), os.ErrExist)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("runtime socket %s: a runtime already serves it: %w", path, ErrInUse)
	}
	if !errors.Is(err, errConnRefused) {
		return fmt.Errorf("runtime socket %s: cannot tell whether it is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("runtime socket %s: remove stale socket: %w", path, err)
	}
	return nil
}

// Path is where the socket is bound.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file, unless another
// runtime has bound that path since.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
		if rerr := os.Remove(l.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
