// Package controltest serves a sub-host in the caller's own process: a fresh
// store in a temporary directory behind a control server on loopback.
// Transport tests dial it (Start tears it down when the test ends); tools
// that need a sub-host but no separate process, such as the fetch benchmark
// without --subhost, use New and Close.
package controltest

import (
	"errors"
	"fmt"
	"net"
	"os"
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
	dir    string // removed by Close when New made it
	state  string // the store's directory
	keys   *control.Keyring
	conf   []func(*control.ServerConfig)
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
	s, err := serve(tb.TempDir(), "127.0.0.1:0", keys, configure)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Kill stops the sub-host at once, as a crash would: the server drops every
// connection and the store is closed. Restart brings it back.
func (s *Subhost) Kill() error { return errors.Join(s.Server.Close(), s.Store.Close()) }

// Restart serves the same state directory on the same address again, with
// the same keys and configuration, after Kill.
func (s *Subhost) Restart() error {
	n, err := serve(s.state, s.Addr, s.keys, s.conf)
	if err != nil {
		return fmt.Errorf("restart in-process sub-host: %w", err)
	}
	s.Server, s.Store = n.Server, n.Store
	return nil
}

// New is Start for callers that are not tests: the store lives in a new
// temporary directory, and Close stops the server and removes it.
func New(keys *control.Keyring, configure ...func(*control.ServerConfig)) (*Subhost, error) {
	dir, err := os.MkdirTemp("", "vmemtrans-subhost-")
	if err != nil {
		return nil, fmt.Errorf("in-process sub-host: %w", err)
	}
	s, err := serve(dir, "127.0.0.1:0", keys, configure)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("in-process sub-host: %w", err)
	}
	s.dir = dir
	return s, nil
}

func serve(dir, addr string, keys *control.Keyring, configure []func(*control.ServerConfig)) (*Subhost, error) {
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	cfg := control.ServerConfig{Backend: control.StoreBackend(st), Keys: keys, Log: zerolog.Nop()}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := control.NewServer(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		st.Close()
		return nil, err
	}
	go func() { _ = srv.Serve(l) }()
	return &Subhost{Addr: l.Addr().String(), Server: srv, Store: st, state: dir, keys: keys, conf: configure}, nil
}

// Close stops the server, closes the store and removes a directory New made.
func (s *Subhost) Close() error {
	err := errors.Join(s.Server.Close(), s.Store.Close())
	if s.dir != "" {
		err = errors.Join(err, os.RemoveAll(s.dir))
	}
	return err
}
