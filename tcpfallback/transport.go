package tcpfallback

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// Options tune a Transport. Zero values pick the defaults.
type Options struct {
	// Slots creates the region with this many slots if it does not exist;
	// 0 opens an existing region only.
	Slots uint64
	// InFlight is the number of requests outstanding at once (default 4).
	InFlight int
	// MaxBatch is the number of slots per request (default 256, at most
	// control.MaxSlotsPerRequest); larger batches are split.
	MaxBatch int
	// Timeout bounds dialing and authentication, each frame write, and the
	// silence of a peer that owes replies (default 30s).
	Timeout time.Duration
	// TLS runs the connection inside TLS when set.
	TLS *tls.Config
}

func (o *Options) defaults() {
	if o.InFlight <= 0 {
		o.InFlight = 4
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	o.MaxBatch = min(o.MaxBatch, wire.MaxSlotsPerRequest)
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
}

// Transport is a fabric.Transport to one VM's region on one sub-host.
type Transport struct {
	addr  string
	vm    string
	opts  Options
	conn  net.Conn
	br    *bufio.Reader
	slots uint64

	window chan struct{} // one token per request in flight
	wmu    sync.Mutex    // serialises frame writes

	mu       sync.Mutex
	pending  map[uint32]*call
	nextID   uint32
	err      error         // why the connection is unusable; set once
	progress atomic.Int64  // unix ns of the last reply, or of going busy
	dead     chan struct{} // closed once err is set
	rtok     chan struct{} // the reading role: held by the goroutine reading replies
	statuses []byte        // reader scratch: status bytes of a read reply
	discard  []byte        // reader scratch: sink for pages of abandoned calls
}

var _ fabric.Transport = (*Transport)(nil)

// Dial connects to the sub-host at addr, authenticates as vm with key, and
// opens (or, with opts.Slots, creates) the VM's region.
func Dial(ctx context.Context, addr, vm string, key []byte, opts Options) (*Transport, error) {
	opts.defaults()
	conn, br, err := control.DialAuth(ctx, addr, vm, key, control.DialOptions{TLS: opts.TLS, Timeout: opts.Timeout})
	if err != nil {
		return nil, err
	}
	t := newTransport(addr, vm, conn, br, opts)
	p, err := t.control(ctx, wire.TypeOpen, wire.AppendOpen(nil, wire.Open{VM: vm, Slots: opts.Slots}))
	if err == nil {
		t.slots, err = wire.ParseUint64(p)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("open region of vm %q on %s: %w", vm, addr, err)
	}
	return t, nil
}

// newTransport wraps an authenticated connection; opts has its defaults.
func newTransport(addr, vm string, conn net.Conn, br *bufio.Reader, opts Options) *Transport {
	t := &Transport{
		addr:    addr,
		vm:      vm,
		opts:    opts,
		conn:    conn,
		br:      br,
		window:  make(chan struct{}, opts.InFlight),
		pending: map[uint32]*call{},
		dead:    make(chan struct{}),
		rtok:    make(chan struct{}, 1),
	}
	t.rtok <- struct{}{}
	go t.watchdog()
	return t
}

// Slots is the number of slots of the region.
func (t *Transport) Slots() uint64 { return t.slots }

// Kind is "tcp".
func (t *Transport) Kind() string { return "tcp" }

// Addr is the sub-host address.
func (t *Transport) Addr() string { return t.addr }

// Close hangs up; calls in flight fail with fabric.ErrClosed.
func (t *Transport) Close() error {
	t.die(fmt.Errorf("transport to %s: %w", t.addr, fabric.ErrClosed))
	// Take the reading role (a reader in progress fails out on the closed
	// connection) and fail whatever is still pending.
	<-t.rtok
	t.sweep()
	t.rtok <- struct{}{}
	return nil
}

// die records the first fatal cause and closes the connection, which makes
// the reader fail everything pending.
func (t *Transport) die(cause error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = cause
		close(t.dead)
	}
	t.mu.Unlock()
	t.conn.Close()
}

// failure is the fatal cause, once there is one.
func (t *Transport) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *Transport) peerErr(err error) error {
	return fmt.Errorf("sub-host %s: %w: %w", t.addr, fabric.ErrPeer, err)
}

// ReadSlots fills each entry's Buf with its slot.
func (t *Transport) ReadSlots(ctx context.Context, batch []fabric.SlotIO) error {
	return t.batch(ctx, wire.TypeRead, batch)
}

// WriteSlots stores each entry's Buf into its slot.
func (t *Transport) WriteSlots(ctx context.Context, batch []fabric.SlotIO) error {
	return t.batch(ctx, wire.TypeWrite, batch)
}

// Stats describes the region on the sub-host.
func (t *Transport) Stats(ctx context.Context) (wire.Stats, error) {
	p, err := t.control(ctx, wire.TypeStats, nil)
	if err != nil {
		return wire.Stats{}, err
	}
	return wire.ParseStats(p)
}

// Sync makes the sub-host flush the region to stable storage.
func (t *Transport) Sync(ctx context.Context) error {
	_, err := t.control(ctx, wire.TypeSync, nil)
	return err
}

// Free releases slots on the sub-host (they read as zeros afterwards). The
// error wraps fabric.ErrPartial when some slots were refused.
func (t *Transport) Free(ctx context.Context, slots []uint64) error {
	batch := make([]fabric.SlotIO, len(slots))
	for i, s := range slots {
		batch[i].Slot = s
	}
	return t.batch(ctx, wire.TypeFree, batch)
}
