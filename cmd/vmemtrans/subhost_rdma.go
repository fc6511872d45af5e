//go:build linux && cgo && rdma

package main

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/rdma"
)

func init() { rdmaResponderFor = newRDMAResponder }

// newRDMAResponder opens the device --rdma names (or the first usable one
// for "auto"); the control server then answers rdma-connect with it.
func newRDMAResponder(mode string) (control.RDMAResponder, error) {
	devs, err := rdma.Discover()
	if err != nil {
		return nil, err
	}
	c, err := rdma.Choose(mode, devs, rdma.Built)
	if err != nil {
		return nil, err
	}
	if c.Transport != rdma.KindRDMA {
		return nil, fmt.Errorf("%s: %w", c.Reason, fabric.ErrNoRDMA)
	}
	r, err := rdma.NewResponder(c.Device)
	if err != nil {
		return nil, err
	}
	log.Info().Str("device", c.Device).Int("port", c.Port).Str("gid", c.GID).Str("netdev", c.Netdev).
		Str("reason", c.Reason).Msg("subhost: serving RDMA")
	return r, nil
}
