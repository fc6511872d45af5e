//go:build !linux

package handoff

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnsupported reports an OS without userfaultfd.
var ErrUnsupported = errors.New("guest ram handoff needs linux (userfaultfd)")

// Listener is the socket the preload library connects to.
type Listener struct{}

// Listen fails on this OS.
func Listen(path string) (*Listener, error) {
	return nil, fmt.Errorf("guest ram handoff socket %s: %w", path, ErrUnsupported)
}

// Path is where the socket is bound.
func (l *Listener) Path() string { return "" }

// Close does nothing.
func (l *Listener) Close() error { return nil }

// Conn is one handoff.
type Conn struct{ Space }

// Accept fails on this OS.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) { return nil, ErrUnsupported }

// PeerPID is the process that handed its RAM over.
func (h *Conn) PeerPID() int { return 0 }

// Ack fails on this OS.
func (h *Conn) Ack(accepted bool) error { return ErrUnsupported }
