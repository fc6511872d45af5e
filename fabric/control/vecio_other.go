//go:build !linux

package control

import "net"

// readvFull reports that this platform reads buffer by buffer.
func readvFull(net.Conn, [][]byte) (bool, error) { return false, nil }
