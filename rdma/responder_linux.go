//go:build linux && cgo && rdma

package rdma

import (
	"fmt"
	"sync"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// Responder is the sub-host side: it registers VM regions once and connects
// queue pairs for authenticated clients. Safe for concurrent use.
type Responder struct {
	dev     *device
	mu      sync.Mutex
	regions map[string]*vmRegion
	retired []*vmRegion // replaced mappings, freed on Close
	conns   map[*Conn]struct{}
	byQPN   map[uint32]*Conn // first server QPN -> client's queue pairs
	closed  bool
}

type vmRegion struct {
	pd pdHandle
	mr *mr
}

var _ control.RDMAResponder = (*Responder)(nil)

// Connect serves a control-protocol rdma-connect: it registers the VM's
// region on first use and connects queue pairs for the client. The control
// server calls it only on authenticated connections with the region open.
func (r *Responder) Connect(vm string, region control.Region, req control.RDMAParams) (control.RDMAParams, error) {
	if err := req.Validate(false); err != nil {
		return control.RDMAParams{}, err
	}
	buf := region.Bytes()
	if len(buf) == 0 || len(buf)%fabric.PageSize != 0 {
		return control.RDMAParams{}, fmt.Errorf("rdma connect vm %q: region mapping of %d bytes", vm, len(buf))
	}
	r.mu.Lock()
	err := r.registerLocked(vm, buf)
	r.mu.Unlock()
	if err != nil {
		return control.RDMAParams{}, err
	}
	reply, c, err := r.Accept(vm, req)
	if err != nil {
		return control.RDMAParams{}, err
	}
	r.mu.Lock()
	r.byQPN[reply.QPs[0].QPN] = c
	r.mu.Unlock()
	return reply, nil
}

// Disconnect destroys the queue pairs a Connect handed out; the control
// server calls it when the client asks or its connection ends.
func (r *Responder) Disconnect(vm string, server control.RDMAParams) error {
	var conns []*Conn
	r.mu.Lock()
	for _, q := range server.QPs {
		if c, ok := r.byQPN[q.QPN]; ok {
			conns = append(conns, c)
		}
	}
	r.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// Conn is the queue pairs of one client; Close them when its control
// connection ends.
type Conn struct {
	r    *Responder
	qps  []*qpair
	once sync.Once
}

// NewResponder opens the verbs device a sub-host serves RDMA on.
func NewResponder(device string) (*Responder, error) {
	d, err := openDevice(device)
	if err != nil {
		return nil, err
	}
	return &Responder{dev: d, regions: map[string]*vmRegion{}, conns: map[*Conn]struct{}{}, byQPN: map[uint32]*Conn{}}, nil
}

// Device names the verbs device.
func (r *Responder) Device() string { return r.dev.name }

// Register makes region (page-aligned memory outside the Go heap, such as a
// store's mapping) readable and writable by the clients of vm, in a
// protection domain of its own.
func (r *Responder) Register(vm string, region []byte) error {
	if len(region) == 0 || len(region)%fabric.PageSize != 0 {
		return fmt.Errorf("rdma register vm %q: region of %d bytes is not whole pages", vm, len(region))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("rdma register vm %q: %w", vm, fabric.ErrClosed)
	}
	return r.registerLocked(vm, region)
}

// registerLocked registers region for vm; a vm whose mapping changed (its
// region was re-created) gets the new one, the old stays registered for
// clients still connected to it until Close.
func (r *Responder) registerLocked(vm string, region []byte) error {
	if old, ok := r.regions[vm]; ok {
		if &old.mr.buf[0] == &region[0] && len(old.mr.buf) == len(region) {
			return nil
		}
		r.retired = append(r.retired, old)
		delete(r.regions, vm)
	}
	pd, err := r.dev.allocPD()
	if err != nil {
		return err
	}
	m, err := regMR(pd, region, accessLocalWrite|accessRemoteRead|accessRemoteWrite)
	if err != nil {
		freePD(pd)
		return fmt.Errorf("rdma register vm %q: %w", vm, err)
	}
	r.regions[vm] = &vmRegion{pd: pd, mr: m}
	return nil
}

// Accept connects one queue pair per requested one, in vm's protection
// domain, and returns the reply for the client. Call it only for a client
// the control protocol authenticated and authorised for vm.
func (r *Responder) Accept(vm string, req control.RDMAParams) (control.RDMAParams, *Conn, error) {
	if err := req.Validate(false); err != nil {
		return control.RDMAParams{}, nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return control.RDMAParams{}, nil, fmt.Errorf("rdma accept vm %q: %w", vm, fabric.ErrClosed)
	}
	reg, ok := r.regions[vm]
	if !ok {
		return control.RDMAParams{}, nil, fmt.Errorf("rdma accept: no region registered for vm %q: %w", vm, fabric.ErrForbidden)
	}
	mtu := min(r.dev.mtu, req.MTU)
	destRd := max(r.dev.maxRd, 1)
	c := &Conn{r: r}
	reply := control.RDMAParams{GID: r.dev.gid, MaxRd: uint8(destRd), MTU: r.dev.mtu,
		RKey: reg.mr.rkey(), Addr: reg.mr.addr(), Len: uint64(len(reg.mr.buf))}
	for _, peer := range req.QPs {
		q, err := r.dev.newQP(reg.pd, 1, accessLocalWrite|accessRemoteRead|accessRemoteWrite)
		if err == nil {
			err = r.dev.connect(q, peer, req.GID, mtu, destRd, 1)
			if err != nil {
				q.destroy()
			}
		}
		if err != nil {
			c.destroy()
			return control.RDMAParams{}, nil, fmt.Errorf("rdma accept vm %q: %w", vm, err)
		}
		c.qps = append(c.qps, q)
		reply.QPs = append(reply.QPs, q.info())
	}
	r.conns[c] = struct{}{}
	return reply, c, nil
}

func (c *Conn) destroy() {
	for _, q := range c.qps {
		q.destroy()
	}
	c.qps = nil
}

// Close destroys the client's queue pairs; its READs and WRITEs fail from
// then on.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		defer c.r.mu.Unlock()
		delete(c.r.conns, c)
		if len(c.qps) > 0 {
			delete(c.r.byQPN, c.qps[0].info().QPN)
		}
		c.destroy()
	})
	return nil
}

// Close tears down every client's queue pairs, the regions and the device.
func (r *Responder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	conns := make([]*Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for vm, reg := range r.regions {
		r.retired = append(r.retired, reg)
		delete(r.regions, vm)
	}
	for _, reg := range r.retired {
		reg.mr.dereg()
		freePD(reg.pd)
	}
	r.retired = nil
	r.dev.close()
	return nil
}
