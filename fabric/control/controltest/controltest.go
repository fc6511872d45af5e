// Package controltest serves a sub-host in the test's own process: a fresh
// store in a temporary directory behind a control server on loopback, torn
// down when the test ends. Transport tests dial it.
package controltest

import (
	"net"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// Subhost is a running in-process sub-host.
type Subhost struct {
	Addr   string
	Server *control.Server
	Store  *store.Store
}

// SharedKey is a keyring in which every VM uses key.
func SharedKey(tb testing.TB, key []byte) *control.Keyring {
	tb.Helper()
	keys, err := control.NewKeyring(map[string][]byte{control.AnyVM: key})
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// Start serves a fresh store with keys on 127.0.0.1; configure may adjust
// the server's configuration (an RDMA responder, timeouts) before it starts.
// The server and then the store are closed when the test ends.
func Start(tb testing.TB, keys *control.Keyring, configure ...func(*control.ServerConfig)) *Subhost {
	tb.Helper()
	st, err := store.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	cfg := control.ServerConfig{Backend: control.StoreBackend(st), Keys: keys, Log: zerolog.Nop()}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := control.NewServer(cfg)
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &Subhost{Addr: l.Addr().String(), Server: srv, Store: st}
}
