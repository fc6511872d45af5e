//go:build linux

package agent

import (
	"context"
	"net"

	"github.com/mdlayher/vsock"
	"golang.org/x/sys/unix"
)

// dialVsock connects over AF_VSOCK (inside a guest: CID 2 is the host, 1
// the guest itself through vsock_loopback).
func dialVsock(ctx context.Context, cid, port uint32) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := vsock.Dial(cid, port, nil)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		ch <- result{c, nil}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// ListenVsock listens on AF_VSOCK port on every CID of this machine (the
// guest's own, and the loopback CID 1). For the in-guest agent only.
func ListenVsock(port uint32) (net.Listener, error) {
	return vsock.ListenContextID(unix.VMADDR_CID_ANY, port, nil)
}
