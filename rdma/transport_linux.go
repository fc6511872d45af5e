//go:build linux && cgo && rdma

package rdma

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// lane is one queue pair with its staging pages and the state of the chain
// it carries. A lane belongs to one batch at a time.
type lane struct {
	q      *qpair
	stage  []byte // depth pages inside the transport's staging region
	laddr  []uint64
	lkey   []uint32
	raddr  []uint64
	staged []bool
	wrid   [64]uint64
	status [64]int32

	idx      []int // batch indices of the chain in flight
	errAt    int   // chain index of the first failed WR, -1 if none
	errSt    int32
	finished bool
	posted   time.Time
	dead     bool
}

// Pending is a main-host connection being set up: its queue pairs exist and
// wait for the sub-host's parameters.
type Pending struct {
	dev   *device
	pd    pdHandle
	stage *mr
	lanes []*lane
	depth int
	// chainTimeout bounds the wait for one chain's last completion (Options.ChainTimeout).
	chainTimeout time.Duration
}

// Prepare opens the device and creates the queue pairs and staging area of a
// future Transport. Send Request() over the control connection, then call
// Complete with the reply, or Abort.
func Prepare(o Options) (*Pending, error) {
	o = o.withDefaults()
	dev, err := openDevice(o.Device)
	if err != nil {
		return nil, err
	}
	depth := min(o.Depth, maxChain, dev.maxInit, max(dev.maxWR-1, 1))
	p := &Pending{dev: dev, depth: depth, chainTimeout: o.ChainTimeout}
	if p.pd, err = dev.allocPD(); err != nil {
		p.Abort()
		return nil, err
	}
	buf, err := mmapPages(o.Lanes * depth)
	if err != nil {
		p.Abort()
		return nil, err
	}
	if p.stage, err = regMR(p.pd, buf, accessLocalWrite); err != nil {
		_ = unix.Munmap(buf)
		p.Abort()
		return nil, err
	}
	for i := 0; i < o.Lanes; i++ {
		q, err := dev.newQP(p.pd, depth, accessLocalWrite)
		if err != nil {
			p.Abort()
			return nil, err
		}
		p.lanes = append(p.lanes, &lane{
			q: q, stage: buf[i*depth*fabric.PageSize : (i+1)*depth*fabric.PageSize],
			laddr: make([]uint64, depth), lkey: make([]uint32, depth), raddr: make([]uint64, depth),
			staged: make([]bool, depth), errAt: -1,
		})
	}
	return p, nil
}

// Request is the client half of the connection parameters.
func (p *Pending) Request() control.RDMAParams {
	c := control.RDMAParams{GID: p.dev.gid, MaxRd: uint8(min(p.depth, 255)), MTU: p.dev.mtu}
	for _, l := range p.lanes {
		c.QPs = append(c.QPs, l.q.info())
	}
	return c
}

// Complete connects the queue pairs to the sub-host's and returns the
// Transport. On error everything is released.
func (p *Pending) Complete(reply control.RDMAParams) (*Transport, error) {
	if err := reply.Validate(true); err != nil {
		p.Abort()
		return nil, err
	}
	if len(reply.QPs) != len(p.lanes) {
		p.Abort()
		return nil, fmt.Errorf("rdma reply: %d queue pairs for %d asked: %w", len(reply.QPs), len(p.lanes), fabric.ErrProtocol)
	}
	mtu := min(p.dev.mtu, reply.MTU)
	rd := min(p.depth, int(reply.MaxRd))
	for i, l := range p.lanes {
		if err := p.dev.connect(l.q, reply.QPs[i], reply.GID, mtu, 1, rd); err != nil {
			p.Abort()
			return nil, err
		}
	}
	t := &Transport{
		dev: p.dev, pd: p.pd, stage: p.stage, lanes: p.lanes,
		pool: make(chan *lane, len(p.lanes)), allDead: make(chan struct{}), done: make(chan struct{}),
		rkey: reply.RKey, raddr: reply.Addr, slots: reply.Len / fabric.PageSize, chain: rd,
		chainTimeout: p.chainTimeout,
	}
	t.alive.Store(int32(len(p.lanes)))
	t.allocs.Store(&[]*mr{})
	for _, l := range p.lanes {
		t.pool <- l
	}
	*p = Pending{}
	return t, nil
}

// Abort releases a connection that will not be completed.
func (p *Pending) Abort() {
	for _, l := range p.lanes {
		l.q.destroy()
	}
	if p.stage != nil {
		buf := p.stage.buf
		p.stage.dereg()
		_ = unix.Munmap(buf)
	}
	if p.pd != nil {
		freePD(p.pd)
	}
	if p.dev != nil {
		p.dev.close()
	}
	*p = Pending{}
}

// Transport is the main-host side of one sub-host region over RDMA: reads
// are RDMA READ chains, writes RDMA WRITE chains. Safe for concurrent use.
type Transport struct {
	dev   *device
	pd    pdHandle
	stage *mr
	lanes []*lane

	pool    chan *lane
	alive   atomic.Int32
	allDead chan struct{}
	deadMu  sync.Once

	rkey  uint32
	raddr uint64
	slots uint64
	chain int

	chainTimeout time.Duration

	life    sync.RWMutex // held shared by every batch, exclusively by Close
	closed  atomic.Bool
	done    chan struct{}
	onClose io.Closer

	allocMu sync.Mutex
	allocs  atomic.Pointer[[]*mr]
}

var _ fabric.Transport = (*Transport)(nil)

// Slots is the number of slots of the sub-host region.
func (t *Transport) Slots() uint64 { return t.slots }

// Kind is "rdma".
func (t *Transport) Kind() string { return KindRDMA }

// Lanes is the number of queue pairs.
func (t *Transport) Lanes() int { return len(t.lanes) }

// Depth is the number of work requests in one chain (per queue pair).
func (t *Transport) Depth() int { return t.chain }

// OnClose makes Close also close c, typically the control connection whose
// end tells the sub-host to tear down this client's queue pairs.
func (t *Transport) OnClose(c io.Closer) { t.onClose = c }

// ReadSlots reads each entry's slot into its Buf with RDMA READs.
func (t *Transport) ReadSlots(ctx context.Context, batch []fabric.SlotIO) error {
	return t.do(ctx, batch, false)
}

// WriteSlots writes each entry's Buf into its slot with RDMA WRITEs.
func (t *Transport) WriteSlots(ctx context.Context, batch []fabric.SlotIO) error {
	return t.do(ctx, batch, true)
}

// Alloc returns n page-sized buffers in registered memory: entries whose Buf
// comes from here are transferred in place, with no staging copy. They stay
// valid until Close.
func (t *Transport) Alloc(n int) ([][]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed.Load() {
		return nil, fmt.Errorf("rdma alloc: %w", fabric.ErrClosed)
	}
	buf, err := mmapPages(n)
	if err != nil {
		return nil, err
	}
	m, err := regMR(t.pd, buf, accessLocalWrite)
	if err != nil {
		_ = unix.Munmap(buf)
		return nil, err
	}
	t.allocMu.Lock()
	next := append(append([]*mr(nil), *t.allocs.Load()...), m)
	t.allocs.Store(&next)
	t.allocMu.Unlock()
	pages := make([][]byte, n)
	for i := range pages {
		pages[i] = buf[i*fabric.PageSize : (i+1)*fabric.PageSize : (i+1)*fabric.PageSize]
	}
	return pages, nil
}

// registered returns the lkey of the Alloc region holding b, if any.
func (t *Transport) registered(b []byte) (uint32, bool) {
	a := uintptr(unsafe.Pointer(&b[0]))
	for _, m := range *t.allocs.Load() {
		base := uintptr(unsafe.Pointer(&m.buf[0]))
		if a >= base && a+fabric.PageSize <= base+uintptr(len(m.buf)) {
			return m.lkey(), true
		}
	}
	return 0, false
}

func (t *Transport) do(ctx context.Context, batch []fabric.SlotIO, write bool) error {
	t.life.RLock()
	defer t.life.RUnlock()
	idx := fabric.StartBatch(batch, t.slots)
	var held []*lane
	var stop error // why no more chains are posted
	pos, idle := 0, 0
	for (pos < len(idx) && stop == nil) || len(held) > 0 {
		for pos < len(idx) && stop == nil {
			l, err := t.acquire(ctx, len(held) == 0)
			if err != nil {
				stop = err
				break
			}
			if l == nil {
				break
			}
			n := min(t.chain, len(idx)-pos)
			if err := t.post(l, batch, idx[pos:pos+n], write); err != nil {
				failAll(batch, idx[pos:pos+n], fmt.Errorf("%w: %w", err, fabric.ErrPeer))
				l.dead = true
				t.release(l)
			} else {
				held = append(held, l)
			}
			pos += n
		}
		progressed := false
		for i := 0; i < len(held); {
			if !t.reap(held[i], batch, write) {
				i++
				continue
			}
			progressed = true
			t.release(held[i])
			held[i] = held[len(held)-1]
			held = held[:len(held)-1]
		}
		if progressed {
			idle = 0
		} else {
			idle = backoff(idle)
		}
	}
	if stop != nil {
		failAll(batch, idx[pos:], stop)
	}
	err := fabric.FinishBatch(batch, stop)
	if err != nil && err != stop {
		err = fmt.Errorf("rdma: %w", err)
	}
	return err
}

// acquire takes a free lane; it waits only when block is set (the caller
// holds no lane, so waiting cannot deadlock against another batch).
func (t *Transport) acquire(ctx context.Context, block bool) (*lane, error) {
	if t.closed.Load() {
		return nil, fmt.Errorf("rdma transport: %w", fabric.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !block {
		select {
		case l := <-t.pool:
			return l, nil
		default:
			return nil, nil
		}
	}
	select {
	case l := <-t.pool:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.done:
		return nil, fmt.Errorf("rdma transport: %w", fabric.ErrClosed)
	case <-t.allDead:
		return nil, fmt.Errorf("rdma transport: every queue pair failed: %w", fabric.ErrPeer)
	}
}

func (t *Transport) release(l *lane) {
	if !l.dead {
		t.pool <- l
		return
	}
	if t.alive.Add(-1) == 0 {
		t.deadMu.Do(func() { close(t.allDead) })
	}
}

// post builds and posts one chain for the batch entries idx on lane l.
func (t *Transport) post(l *lane, batch []fabric.SlotIO, idx []int, write bool) error {
	stageBase := t.stage.addr() + uint64(uintptr(unsafe.Pointer(&l.stage[0]))-uintptr(unsafe.Pointer(&t.stage.buf[0])))
	for k, i := range idx {
		e := &batch[i]
		l.raddr[k] = t.raddr + e.Slot*fabric.PageSize
		if key, ok := t.registered(e.Buf); ok {
			l.laddr[k], l.lkey[k], l.staged[k] = uint64(uintptr(unsafe.Pointer(&e.Buf[0]))), key, false
			continue
		}
		l.laddr[k], l.lkey[k], l.staged[k] = stageBase+uint64(k*fabric.PageSize), t.stage.lkey(), true
		if write {
			copy(l.stage[k*fabric.PageSize:(k+1)*fabric.PageSize], e.Buf)
		}
	}
	n := len(idx)
	l.idx, l.errAt, l.finished, l.posted = idx, -1, false, time.Now()
	return l.q.postChain(write, l.laddr[:n], l.lkey[:n], l.raddr[:n], t.rkey)
}

// reap polls lane l and, once its chain has finished, settles the chain's
// entries. It reports whether the chain finished.
func (t *Transport) reap(l *lane, batch []fabric.SlotIO, write bool) bool {
	n, err := l.q.poll(l.wrid[:], l.status[:])
	if err != nil {
		l.dead = true
		failAll(batch, l.idx, err)
		return true
	}
	last := uint64(len(l.idx) - 1)
	for c := 0; c < n; c++ {
		if l.status[c] != wcSuccess && l.errAt < 0 {
			l.errAt, l.errSt = int(l.wrid[c]), l.status[c]
		}
		if l.wrid[c] == last {
			l.finished = true
		}
	}
	if !l.finished {
		if time.Since(l.posted) > t.chainTimeout {
			l.dead = true
			l.q.fail()
			failAll(batch, l.idx, fmt.Errorf("rdma chain of %d: no completion in %v: %w", len(l.idx), t.chainTimeout, fabric.ErrPeer))
			return true
		}
		return false
	}
	op := "read"
	if write {
		op = "write"
	}
	for k, i := range l.idx {
		e := &batch[i]
		switch {
		case l.errAt >= 0 && k > l.errAt:
			e.Err = fmt.Errorf("rdma %s slot %d: flushed after slot %d failed: %w", op, e.Slot, batch[l.idx[l.errAt]].Slot, fabric.ErrPeer)
		case l.errAt == k:
			e.Err = wcError(op, e.Slot, l.errSt)
		case !write && l.staged[k]:
			copy(e.Buf, l.stage[k*fabric.PageSize:(k+1)*fabric.PageSize])
		}
	}
	if l.errAt >= 0 {
		l.dead = true // an errored RC queue pair stays in the error state
	}
	return true
}

func wcError(op string, slot uint64, st int32) error {
	if st == wcRemAccessErr {
		return fmt.Errorf("rdma %s slot %d: %s (outside the sub-host region): %w", op, slot, statusString(st), fabric.ErrSlotRange)
	}
	return fmt.Errorf("rdma %s slot %d: %s: %w", op, slot, statusString(st), fabric.ErrPeer)
}

// backoff spins first (completions arrive within microseconds on a NIC),
// then yields, then sleeps briefly so an idle wait does not burn a core.
func backoff(idle int) int {
	switch {
	case idle < 64:
	case idle < 4096:
		runtime.Gosched()
	default:
		time.Sleep(20 * time.Microsecond)
	}
	return idle + 1
}

// Close waits for batches in flight to finish their posted chains, fails
// their unposted entries with ErrClosed and releases every verbs resource.
func (t *Transport) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(t.done)
	t.life.Lock()
	defer t.life.Unlock()
	for _, l := range t.lanes {
		l.q.destroy()
	}
	for _, m := range *t.allocs.Load() {
		buf := m.buf
		m.dereg()
		_ = unix.Munmap(buf)
	}
	buf := t.stage.buf
	t.stage.dereg()
	_ = unix.Munmap(buf)
	freePD(t.pd)
	t.dev.close()
	if t.onClose != nil {
		return t.onClose.Close()
	}
	return nil
}
