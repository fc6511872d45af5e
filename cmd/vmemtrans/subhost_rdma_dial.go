package main

import (
	"context"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/rdma"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// dialTransport connects to the sub-host at addr as vm, preferring RDMA as
// mode ("auto", "off" or a device name) allows and falling back to TCP with
// tcp's options; it logs which transport it chose and why.
func dialTransport(ctx context.Context, addr, vm string, key []byte, mode string, tcp tcpfallback.Options) (fabric.Transport, error) {
	o := rdma.DialOptions{Slots: tcp.Slots, Control: control.DialOptions{TLS: tcp.TLS, Timeout: tcp.Timeout}}
	return rdma.DialAuto(ctx, addr, vm, key, mode, o, func(ctx context.Context) (fabric.Transport, error) {
		return tcpfallback.Dial(ctx, addr, vm, key, tcp)
	}, log)
}
