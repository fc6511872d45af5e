//go:build !(linux && cgo && rdma)

package rdma

import (
	"context"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// Built reports whether this binary carries the verbs binding.
const Built = false

func errNotBuilt(what string) error {
	return fmt.Errorf("rdma %s: built without RDMA support: rebuild with -tags rdma: %w", what, fabric.ErrNoRDMA)
}

// Pending is a main-host connection being set up (unavailable in this build).
type Pending struct{}

// Prepare fails: this build has no verbs binding.
func Prepare(o Options) (*Pending, error) {
	return nil, errNotBuilt("device " + o.withDefaults().Device)
}

// Request returns empty parameters.
func (p *Pending) Request() control.RDMAParams { return control.RDMAParams{} }

// Complete fails: this build has no verbs binding.
func (p *Pending) Complete(control.RDMAParams) (*Transport, error) {
	return nil, errNotBuilt("connect")
}

// Abort does nothing.
func (p *Pending) Abort() {}

// Transport is the RDMA transport (unavailable in this build).
type Transport struct{}

var _ fabric.Transport = (*Transport)(nil)

// ReadSlots fails every entry.
func (t *Transport) ReadSlots(_ context.Context, b []fabric.SlotIO) error { return failStub(b) }

// WriteSlots fails every entry.
func (t *Transport) WriteSlots(_ context.Context, b []fabric.SlotIO) error { return failStub(b) }

func failStub(b []fabric.SlotIO) error {
	err := errNotBuilt("transport")
	for i := range b {
		b[i].Err = err
	}
	return err
}

// Slots is zero.
func (t *Transport) Slots() uint64 { return 0 }

// Kind is "rdma".
func (t *Transport) Kind() string { return KindRDMA }

// Lanes is zero.
func (t *Transport) Lanes() int { return 0 }

// Depth is zero.
func (t *Transport) Depth() int { return 0 }

// OnClose does nothing.
func (t *Transport) OnClose(io.Closer) {}

// Alloc fails.
func (t *Transport) Alloc(int) ([][]byte, error) { return nil, errNotBuilt("alloc") }

// Close does nothing.
func (t *Transport) Close() error { return nil }

// Responder is the sub-host side (unavailable in this build).
type Responder struct{}

// Conn is one client's queue pairs (unavailable in this build).
type Conn struct{}

// NewResponder fails: this build has no verbs binding.
func NewResponder(device string) (*Responder, error) { return nil, errNotBuilt("device " + device) }

// Device is empty.
func (r *Responder) Device() string { return "" }

// Register fails.
func (r *Responder) Register(string, []byte) error { return errNotBuilt("register") }

// Accept fails.
func (r *Responder) Accept(string, control.RDMAParams) (control.RDMAParams, *Conn, error) {
	return control.RDMAParams{}, nil, errNotBuilt("accept")
}

var _ control.RDMAResponder = (*Responder)(nil)

// Connect fails.
func (r *Responder) Connect(string, control.Region, control.RDMAParams) (control.RDMAParams, error) {
	return control.RDMAParams{}, errNotBuilt("connect")
}

// Disconnect does nothing.
func (r *Responder) Disconnect(string, control.RDMAParams) error { return nil }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// Close does nothing.
func (r *Responder) Close() error { return nil }
