package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// benchSubhost is a sub-host served by the bench process itself, on
// loopback with a temporary state directory and a random key for the one
// VM the bench uses.
type benchSubhost struct {
	addr  string
	key   []byte
	dir   string
	store *store.Store
	srv   *control.Server
}

func startBenchSubhost(vm string) (*benchSubhost, error) {
	dir, err := os.MkdirTemp("", "vmemtrans-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench sub-host: %w", err)
	}
	b := &benchSubhost{dir: dir, key: make([]byte, 32)}
	if _, err := rand.Read(b.key); err != nil {
		b.close()
		return nil, err
	}
	if b.store, err = store.Open(dir); err != nil {
		b.close()
		return nil, fmt.Errorf("bench sub-host: %w", err)
	}
	keys, err := control.NewKeyring(map[string][]byte{vm: b.key})
	if err != nil {
		b.close()
		return nil, err
	}
	if b.srv, err = control.NewServer(control.ServerConfig{Backend: control.StoreBackend(b.store), Keys: keys, Log: log}); err != nil {
		b.close()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.close()
		return nil, fmt.Errorf("bench sub-host: %w", err)
	}
	b.addr = l.Addr().String()
	go func() { _ = b.srv.Serve(l) }()
	return b, nil
}

func (b *benchSubhost) close() {
	if b.srv != nil {
		b.srv.Close()
	}
	if b.store != nil {
		b.store.Close()
	}
	os.RemoveAll(b.dir)
}
