//go:build linux

package vmsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// A whole server connection fed arbitrary bytes ends by itself (no hang),
// answers only with well-formed frames, and leaves the server serving.
func FuzzServerConn(f *testing.F) {
	b := newFakeBackend(f)
	srv, err := NewServer(ServerConfig{
		Backend: b, Log: zerolog.Nop(),
		HandshakeTimeout: time.Second, FrameTimeout: time.Second, WriteTimeout: time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	h := hello(1, 1)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(h)
	f.Add(join(h, buildFrame(TypeGetInfo, 2, nil), buildFrame(TypeGetFDs, 3, nil)))
	f.Add(join(h, buildFrame(TypeMakeResident, 2, AppendGFNs(nil, []fabric.GFN{1, 99, 3})), buildFrame(TypeGetInfo, 3, nil)))
	f.Add(join(h, buildFrame(TypeMakeResident, 2, []byte{0, 0, 0, 1, 0})))
	f.Add(join(h, AppendHeader(nil, Header{Type: TypeMakeResident, ID: 9, Len: MaxPayload})))
	f.Add(join(hello(3, 9), buildFrame(TypeGetInfo, 2, nil)))
	f.Add(join(hello(1, 2), buildFrame(TypeGetStats, 2, nil), buildFrame(TypeGetInfo, 3, nil)))
	f.Add([]byte("VS\x01\x00\x00\x00\x00\x01\x00\x00\x00\x04\x00\x01\x00\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := socketPair(t)
		done := make(chan struct{})
		go func() { srv.ServeConn(server); close(done) }()
		go func() {
			client.Write(in)
			client.CloseWrite()
		}()
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(client)
		if err != nil && !errors.Is(err, unix.ECONNRESET) {
			t.Fatalf("reading the server's answer: %v", err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("server connection did not end")
		}
		r := bytes.NewReader(out)
		for r.Len() > 0 {
			h, p, err := readFrame(r, replyLimit, nil)
			if err != nil {
				t.Fatalf("server sent a malformed frame: %v", err)
			}
			checkPayload(t, h.Type, p)
		}
	})
}

// socketPair is a connected pair of unix stream connections.
func socketPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}
