package fabrictest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// MemTransport is a fabric.Transport over an in-process byte slice. An
// optional per-batch delay models the round trip to a remote peer. Kill makes
// it behave like a dead peer.
type MemTransport struct {
	slots uint64
	delay time.Duration

	mu  sync.RWMutex // readers share, writers exclude: no torn pages
	mem []byte

	closeOnce sync.Once
	closed    chan struct{}
	killOnce  sync.Once
	dead      chan struct{}
}

var _ fabric.Transport = (*MemTransport)(nil)

// NewMemTransport returns a transport over a zero-filled region of slots
// pages; every batch waits delay before it is served (0 for none).
func NewMemTransport(slots uint64, delay time.Duration) *MemTransport {
	return &MemTransport{
		slots:  slots,
		delay:  delay,
		mem:    make([]byte, slots*fabric.PageSize),
		closed: make(chan struct{}),
		dead:   make(chan struct{}),
	}
}

// MemFactory is a Factory of MemTransports with the given per-batch delay.
func MemFactory(delay time.Duration) Factory {
	return func(_ testing.TB, slots uint64) Peer {
		m := NewMemTransport(slots, delay)
		return Peer{Transport: m, Kill: m.Kill}
	}
}

// Bytes is the backing region, for tests that inspect or preload it.
func (m *MemTransport) Bytes() []byte { return m.mem }

// Kill makes the peer unavailable: batches waiting out their delay and every
// later batch fail with fabric.ErrPeer.
func (m *MemTransport) Kill() { m.killOnce.Do(func() { close(m.dead) }) }

// Close releases the transport; waiting and later batches fail with
// fabric.ErrClosed. Close may be called more than once.
func (m *MemTransport) Close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	return nil
}

// Slots is the region size in slots.
func (m *MemTransport) Slots() uint64 { return m.slots }

// Kind is "mem".
func (m *MemTransport) Kind() string { return "mem" }

// ReadSlots copies each entry's slot into its buffer.
func (m *MemTransport) ReadSlots(ctx context.Context, batch []fabric.SlotIO) error {
	return m.do(ctx, "read", batch, func(page, buf []byte) { copy(buf, page) })
}

// WriteSlots copies each entry's buffer into its slot.
func (m *MemTransport) WriteSlots(ctx context.Context, batch []fabric.SlotIO) error {
	return m.do(ctx, "write", batch, func(page, buf []byte) { copy(page, buf) })
}

func (m *MemTransport) do(ctx context.Context, op string, batch []fabric.SlotIO, move func(page, buf []byte)) error {
	if len(batch) == 0 {
		return nil
	}
	if err := m.wait(ctx); err != nil {
		return fabric.FailBatch(batch, fmt.Errorf("mem transport %s of %d slots: %w", op, len(batch), err))
	}
	if op == "read" {
		m.mu.RLock()
		defer m.mu.RUnlock()
	} else {
		m.mu.Lock()
		defer m.mu.Unlock()
	}
	for _, i := range fabric.StartBatch(batch, m.slots) {
		off := batch[i].Slot * fabric.PageSize
		move(m.mem[off:off+fabric.PageSize], batch[i].Buf)
	}
	if err := fabric.FinishBatch(batch, nil); err != nil {
		return fmt.Errorf("mem transport %s: %w", op, err)
	}
	return nil
}

// wait checks the state of the call and the peer, then waits out the delay.
func (m *MemTransport) wait(ctx context.Context) error {
	if err := m.state(ctx); err != nil {
		return err
	}
	if m.delay <= 0 {
		return nil
	}
	timer := time.NewTimer(m.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return m.state(ctx)
	case <-ctx.Done():
		return ctx.Err()
	case <-m.closed:
		return fabric.ErrClosed
	case <-m.dead:
		return fabric.ErrPeer
	}
}

func (m *MemTransport) state(ctx context.Context) error {
	select {
	case <-m.closed:
		return fabric.ErrClosed
	case <-m.dead:
		return fabric.ErrPeer
	default:
	}
	return ctx.Err()
}
