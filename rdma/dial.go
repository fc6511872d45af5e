package rdma

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// DialOptions configure Dial and DialAuto.
type DialOptions struct {
	Options                     // device, lanes, depth
	Slots   uint64              // create the region with this many slots if it does not exist
	Control control.DialOptions // TLS and timeout of the control connection
}

// Dial connects to the sub-host's control port at addr, authenticates as vm
// with key, opens the region and connects RDMA queue pairs over it. The
// control connection stays open for the Transport's lifetime: closing it
// tells the sub-host to destroy this client's queue pairs. Errors wrap
// fabric.ErrNoRDMA when either end cannot do RDMA.
func Dial(ctx context.Context, addr, vm string, key []byte, o DialOptions) (*Transport, error) {
	p, err := Prepare(o.Options)
	if err != nil {
		return nil, err
	}
	cl, err := control.Dial(ctx, addr, vm, key, o.Control)
	if err != nil {
		p.Abort()
		return nil, err
	}
	fail := func(err error) (*Transport, error) {
		p.Abort()
		_ = cl.Close()
		return nil, err
	}
	slots, err := cl.Open(vm, o.Slots)
	if err != nil {
		return fail(fmt.Errorf("open region of vm %q on %s: %w", vm, addr, err))
	}
	reply, err := cl.RDMAConnect(p.Request())
	if err != nil {
		return fail(fmt.Errorf("rdma-connect to %s: %w", addr, err))
	}
	if err := reply.Validate(true); err != nil {
		return fail(fmt.Errorf("rdma-connect reply from %s: %w", addr, err))
	}
	if reply.Len/fabric.PageSize != slots {
		return fail(fmt.Errorf("rdma-connect reply from %s: region of %d bytes for %d slots: %w", addr, reply.Len, slots, fabric.ErrProtocol))
	}
	t, err := p.Complete(reply)
	if err != nil {
		_ = cl.Close()
		return nil, err
	}
	t.OnClose(cl)
	return t, nil
}

// Fallback dials the TCP transport when RDMA is not used.
type Fallback func(ctx context.Context) (fabric.Transport, error)

// DialAuto picks the transport for mode "auto", "off" or a device name: RDMA
// when this host has a usable device and the sub-host agrees, TCP otherwise.
// It logs which it chose and why. A named device that fails is an error,
// not a silent fallback.
func DialAuto(ctx context.Context, addr, vm string, key []byte, mode string, o DialOptions, fallback Fallback, log zerolog.Logger) (fabric.Transport, error) {
	devs, err := Discover()
	if err != nil {
		log.Warn().Err(err).Msg("rdma discovery failed")
	}
	choice, err := Choose(mode, devs, Built)
	if err != nil {
		return nil, err
	}
	if choice.Transport == KindTCP {
		log.Info().Str("transport", KindTCP).Str("reason", choice.Reason).Msg("transport chosen")
		return fallback(ctx)
	}
	o.Device = choice.Device
	t, err := Dial(ctx, addr, vm, key, o)
	if err == nil {
		log.Info().Str("transport", KindRDMA).Str("device", choice.Device).Str("gid", choice.GID).
			Int("lanes", t.Lanes()).Int("depth", t.Depth()).Str("reason", choice.Reason).Msg("transport chosen")
		return t, nil
	}
	if mode != "auto" && mode != "" {
		return nil, err
	}
	if errors.Is(err, fabric.ErrAuth) || errors.Is(err, fabric.ErrForbidden) {
		return nil, err // TCP would be refused the same way
	}
	log.Info().Str("transport", KindTCP).Err(err).Msg("transport chosen: rdma unavailable, falling back")
	return fallback(ctx)
}
