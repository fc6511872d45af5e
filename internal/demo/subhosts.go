package demo

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// subhost is a sub-host served in this process on loopback, with its own
// state directory and a key for the demo VM alone.
type subhost struct {
	addr  string
	key   []byte
	dir   string
	store *store.Store
	srv   *control.Server
}

func startSubhost(vm string, log zerolog.Logger) (*subhost, error) {
	dir, err := os.MkdirTemp("", "vmemtrans-demo-subhost-")
	if err != nil {
		return nil, fmt.Errorf("demo sub-host: %w", err)
	}
	s := &subhost{dir: dir, key: make([]byte, 32)}
	if _, err := rand.Read(s.key); err != nil {
		s.close()
		return nil, err
	}
	if s.store, err = store.Open(dir); err != nil {
		s.close()
		return nil, fmt.Errorf("demo sub-host: %w", err)
	}
	keys, err := control.NewKeyring(map[string][]byte{vm: s.key})
	if err != nil {
		s.close()
		return nil, err
	}
	if s.srv, err = control.NewServer(control.ServerConfig{Backend: control.StoreBackend(s.store), Keys: keys, Log: log}); err != nil {
		s.close()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, fmt.Errorf("demo sub-host: %w", err)
	}
	s.addr = l.Addr().String()
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *subhost) close() {
	if s.srv != nil {
		s.srv.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
	os.RemoveAll(s.dir)
}
