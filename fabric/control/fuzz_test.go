package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// Every decoder of peer bytes either accepts and re-encodes to the same
// bytes, or rejects with ErrProtocol; none panics.

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("vm-a 00112233445566778899aabbccddeeff\n* 00112233445566778899aabbccddeeff\n"))
	f.Add([]byte("# nothing\n"))
	f.Add([]byte("vm\t00112233445566778899aabbccddeeffaa # c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeyring(b)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("error %v does not wrap ErrKeyFile", err)
			}
			return
		}
		for vm, key := range k.keys {
			if (vm != AnyVM && !ValidVMID(vm)) || len(key) < MinKeySize {
				t.Fatalf("keyring accepted vm %q with a key of %d bytes", vm, len(key))
			}
		}
	})
}

// FuzzSession feeds arbitrary bytes to an authenticated server connection:
// the server must neither panic nor hang, and must keep serving others.
func FuzzSession(f *testing.F) {
	open := wire.AppendOpen(nil, wire.Open{VM: "vm-a", Slots: 8})
	seed := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	frame := func(t wire.Type, id uint32, p []byte) []byte {
		return append(wire.AppendHeader(nil, wire.Header{Type: t, ID: id, Len: uint32(len(p))}), p...)
	}
	f.Add(seed(frame(wire.TypeOpen, 1, open), frame(wire.TypeRead, 2, wire.AppendSlots(nil, []uint64{0, 9, 3}))))
	f.Add(seed(frame(wire.TypeOpen, 1, open), frame(wire.TypeWrite, 2, append(wire.AppendSlots(nil, []uint64{1}), make([]byte, fabric.PageSize)...))))
	f.Add(seed(frame(wire.TypeOpen, 1, open), frame(wire.TypeFree, 2, wire.AppendSlots(nil, []uint64{1, 100})), frame(wire.TypeStats, 3, nil)))
	f.Add(seed(frame(wire.TypeRead, 1, wire.AppendSlots(nil, []uint64{0}))))
	f.Add(seed(frame(wire.TypeRDMAConnect, 1, wire.AppendRDMAParams(nil, RDMAParams{QPs: []QP{{QPN: 1}}}))))
	f.Add(seed(frame(wire.TypeBaselinePing, 1, wire.AppendBaselinePing(nil, wire.BaselinePing{Rounds: 1, Request: 1, Reply: 1})), []byte{0}))
	f.Add([]byte("VM\x01\x07\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x04\xff\xff\xff\xff"))
	addr, _, _ := startServer(f, func(c *ServerConfig) { c.BaselineLimit = 1 << 20 })
	f.Fuzz(func(t *testing.T, b []byte) {
		conn, br, err := DialAuth(context.Background(), addr, "vm-a", testKey, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { _, _ = conn.Write(b); conn.(*net.TCPConn).CloseWrite() }()
		// A server that hangs up on a malformed frame while our bytes are
		// still unread makes the kernel send a reset: that is finishing too.
		if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server did not finish the connection: %v", err)
		}
		c, err := Dial(context.Background(), addr, "vm-b", testKey, DialOptions{})
		if err != nil {
			t.Fatalf("server stopped serving: %v", err)
		}
		defer c.Close()
		if _, err := c.Open("vm-b", 4); err != nil {
			t.Fatalf("server stopped serving: %v", err)
		}
	})
}
