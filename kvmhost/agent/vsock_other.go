//go:build !linux

package agent

import (
	"context"
	"fmt"
	"net"
)

func dialVsock(context.Context, uint32, uint32) (net.Conn, error) {
	return nil, fmt.Errorf("vsock: %w", ErrUnsupported)
}

// ListenVsock needs Linux.
func ListenVsock(uint32) (net.Listener, error) {
	return nil, fmt.Errorf("vsock: %w", ErrUnsupported)
}
