//go:build !linux

package vmsock

import (
	"net"
	"os"
)

func peerCred(*net.UnixConn) (PeerCred, error) { return PeerCred{}, ErrUnsupported }

func sendWithFiles(*net.UnixConn, []byte, []*os.File) error { return ErrUnsupported }

type fdConn struct{}

func newFDConn(*net.UnixConn) (*fdConn, error) { return nil, ErrUnsupported }

func (*fdConn) Read([]byte) (int, error) { return 0, ErrUnsupported }

func (*fdConn) popFiles(int, ...string) ([]*os.File, error) { return nil, ErrUnsupported }

func (*fdConn) closeQueued() {}

var errConnRefused = ErrUnsupported
