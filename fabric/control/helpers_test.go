package control

import (
	"bytes"
	"net"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/store"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

// startServer serves a fresh store on a loopback port with one key for every VM.
func startServer(t testing.TB, opts ...func(*ServerConfig)) (addr string, srv *Server, st *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewKeyring(map[string][]byte{AnyVM: testKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{Backend: StoreBackend(st), Keys: keys, Log: zerolog.Nop()}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err = NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return l.Addr().String(), srv, st
}
