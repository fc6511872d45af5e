package demo

import (
	"crypto/rand"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
)

// subhost is a sub-host served in this process on loopback, with its own
// state directory and a key for the demo VM alone.
type subhost struct {
	addr string
	key  []byte
	sh   *controltest.Subhost
}

func startSubhost(vm string, log zerolog.Logger) (*subhost, error) {
	s := &subhost{key: make([]byte, 32)}
	if _, err := rand.Read(s.key); err != nil {
		return nil, err
	}
	keys, err := control.NewKeyring(map[string][]byte{vm: s.key})
	if err != nil {
		return nil, err
	}
	if s.sh, err = controltest.New(keys, func(c *control.ServerConfig) { c.Log = log }); err != nil {
		return nil, fmt.Errorf("demo sub-host: %w", err)
	}
	s.addr = s.sh.Addr
	return s, nil
}

func (s *subhost) close() { s.sh.Close() }
