//go:build !linux

package wire

import "net"

// readvFull reports that this platform reads buffer by buffer.
func readvFull(net.Conn, [][]byte) (bool, error) { return false, nil }
