package tcpfallback

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

// startSubhost serves a fresh store on a loopback port; every VM shares testKey.
func startSubhost(t testing.TB) *controltest.Subhost {
	t.Helper()
	return controltest.Start(t, controltest.SharedKey(t, testKey))
}

func dialT(t testing.TB, addr, vm string, opts Options) *Transport {
	t.Helper()
	return dialTKey(t, addr, vm, testKey, opts)
}

func dialTKey(t testing.TB, addr, vm string, key []byte, opts Options) *Transport {
	t.Helper()
	tr, err := Dial(context.Background(), addr, vm, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// page returns a page whose bytes name slot and generation.
func page(slot uint64, gen byte) []byte {
	p := make([]byte, 4096)
	for i := range p {
		p[i] = byte(slot) ^ byte(slot>>8) ^ byte(i) ^ gen
	}
	p[0], p[1] = byte(slot), byte(slot>>8)
	return p
}

// muteProxy forwards a connection to target but passes only the first
// quota bytes of the server's side: a peer that authenticates and then
// falls silent.
func muteProxy(t testing.TB, target string, quota int64) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go func() { _, _ = io.Copy(s, c) }()
			go func() {
				_, _ = io.CopyN(c, s, quota)
				_, _ = io.Copy(io.Discard, s)
			}()
		}
	}()
	return l.Addr().String()
}
