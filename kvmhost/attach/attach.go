// Package attach is the IDS side of a split-memory VM: it dials the
// runtime's control socket, maps the guest RAM and location map it hands
// over, dials the VM's sub-hosts, and returns a fabric.Memory that reads
// the whole guest as if it were not split. How sub-hosts are dialed (TCP,
// RDMA) is the caller's choice, so this package imports no transport.
package attach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
)

// DialFunc connects to one of the VM's sub-hosts with the credentials the
// runtime handed over.
type DialFunc func(ctx context.Context, s vmsock.Subhost) (fabric.Transport, error)

// Options choose how the VM is read.
type Options struct {
	Method     fabric.Method
	CacheBytes int64
	Timeout    time.Duration
	Dial       DialFunc
	// Exchanger, if set, serves self paging instead of the runtime's own
	// MakeResident: an in-guest agent's client (kvmhost/agent), say. The
	// caller keeps and closes it.
	Exchanger fabric.Exchanger
}

// VM is an attached split-memory VM.
type VM struct {
	*fabric.Memory
	Info   vmsock.VMInfo
	client *vmsock.Client
	view   *fabric.LocationView
	ram    *os.File
	subs   map[uint8]fabric.Transport
}

// Attach connects to the runtime serving socket and prepares reads by
// opt.Method. The caller closes the VM.
func Attach(ctx context.Context, socket string, opt Options) (*VM, error) {
	if opt.Dial == nil {
		return nil, errors.New("attach: no sub-host dialer")
	}
	c, err := vmsock.DialContext(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("attach to the runtime at %s: %w", socket, err)
	}
	vm := &VM{client: c, Info: c.Info(), subs: map[uint8]fabric.Transport{}}
	var mapFile *os.File
	if vm.ram, mapFile, err = c.Files(ctx); err != nil {
		vm.Close()
		return nil, fmt.Errorf("attach: guest ram and location map: %w", err)
	}
	vm.view, err = fabric.OpenLocationMapReadOnly(int(mapFile.Fd()))
	mapFile.Close()
	if err != nil {
		vm.Close()
		return nil, fmt.Errorf("attach: location map: %w", err)
	}
	for _, s := range vm.Info.Subhosts {
		t, err := opt.Dial(ctx, s)
		if err != nil {
			vm.Close()
			return nil, fmt.Errorf("attach: sub-host %d at %s: %w", s.ID, s.Addr, err)
		}
		vm.subs[s.ID] = t
	}
	cfg := fabric.MemoryConfig{
		RAM: vm.ram, Locations: vm.view, Layout: vm.Info.Layout, Subhosts: vm.subs,
		Method: opt.Method, CacheBytes: opt.CacheBytes, Timeout: opt.Timeout,
	}
	if opt.Method == fabric.MethodSelf {
		cfg.Exchanger = c
		if opt.Exchanger != nil {
			cfg.Exchanger = opt.Exchanger
		}
	}
	if vm.Memory, err = fabric.NewMemory(cfg); err != nil {
		vm.Close()
		return nil, err
	}
	return vm, nil
}

// Locations is the VM's location map, read-only.
func (vm *VM) Locations() fabric.Locations { return vm.view }

// Runtime is the connection to the VM's runtime.
func (vm *VM) Runtime() *vmsock.Client { return vm.client }

// Close releases the reader, the transports, the mappings and the socket.
func (vm *VM) Close() error {
	var errs []error
	if vm.Memory != nil {
		errs = append(errs, vm.Memory.Close())
	}
	for _, t := range vm.subs {
		errs = append(errs, t.Close())
	}
	if vm.view != nil {
		errs = append(errs, vm.view.Close())
	}
	if vm.ram != nil {
		errs = append(errs, vm.ram.Close())
	}
	if vm.client != nil {
		errs = append(errs, vm.client.Close())
	}
	return errors.Join(errs...)
}
