package tcpfallback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// callState tells who owns a call's buffers.
type callState uint8

const (
	statePending   callState = iota // sent, reply not started; caller may abandon
	stateReading                    // the reader is filling its buffers
	stateAbandoned                  // caller gave up; the reader discards the reply
)

// call is one request on the wire.
type call struct {
	id      uint32
	op      wire.Type
	entries []*fabric.SlotIO // read, write, free: one per slot in the request
	reply   []byte           // control ops: the reply payload
	err     error            // whole-request failure
	state   callState        // guarded by Transport.mu
	done    chan struct{}
}

// entryErr is the per-slot form of a status code.
func entryErr(slot uint64, c wire.Code) error {
	return fmt.Errorf("slot %d: %w", slot, c.Err())
}

// batch validates entries locally, then sends the rest in requests of at
// most MaxBatch slots, keeping up to InFlight requests outstanding.
func (t *Transport) batch(ctx context.Context, op wire.Type, batch []fabric.SlotIO) error {
	if len(batch) == 0 {
		return t.ready(ctx)
	}
	if err := t.ready(ctx); err != nil {
		return fabric.FailBatch(batch, err)
	}
	valid := make([]*fabric.SlotIO, 0, len(batch))
	if op == wire.TypeFree { // frees carry no pages
		for i := range batch {
			if batch[i].Err = fabric.CheckSlot(batch[i].Slot, t.slots); batch[i].Err == nil {
				valid = append(valid, &batch[i])
			}
		}
	} else {
		for _, i := range fabric.StartBatch(batch, t.slots) {
			valid = append(valid, &batch[i])
		}
	}
	var calls []*call
	var cause error
	for len(valid) > 0 {
		n := min(len(valid), t.opts.MaxBatch)
		c, err := t.start(ctx, op, valid[:n], nil)
		if err != nil {
			cause = err
			for _, e := range valid {
				e.Err = err
			}
			break
		}
		calls = append(calls, c)
		valid = valid[n:]
	}
	for _, c := range calls {
		if err := t.wait(ctx, c); err != nil {
			if cause == nil {
				cause = err
			}
			for _, e := range c.entries {
				e.Err = err
			}
		}
	}
	return fabric.FinishBatch(batch, cause)
}

// ready reports why no call can start now: a dead context or connection.
func (t *Transport) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.failure()
}

// control sends one request without slots and returns its reply payload.
func (t *Transport) control(ctx context.Context, op wire.Type, payload []byte) ([]byte, error) {
	if err := t.ready(ctx); err != nil {
		return nil, err
	}
	c, err := t.start(ctx, op, nil, payload)
	if err != nil {
		return nil, err
	}
	if err := t.wait(ctx, c); err != nil {
		return nil, err
	}
	return c.reply, nil
}

// start takes a window slot, registers the call and sends its frame.
func (t *Transport) start(ctx context.Context, op wire.Type, entries []*fabric.SlotIO, payload []byte) (*call, error) {
	// While the window is full, replies must be read to free it, and the
	// reading role may be idle: take it if so.
	for acquired := false; !acquired; {
		select {
		case t.window <- struct{}{}:
			acquired = true
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.dead:
			return nil, t.failure()
		case <-t.rtok:
			if t.lead(ctx, t.windowOpen) {
				return nil, ctx.Err()
			}
		}
	}
	c := &call{op: op, entries: entries, done: make(chan struct{})}
	t.mu.Lock()
	if t.err != nil {
		err := t.err
		t.mu.Unlock()
		<-t.window
		return nil, err
	}
	t.nextID++
	c.id = t.nextID
	t.pending[c.id] = c
	if len(t.pending) == 1 {
		t.progress.Store(time.Now().UnixNano()) // the watchdog's clock starts now
	}
	t.mu.Unlock()
	if err := t.send(c, payload); err != nil {
		perr := t.peerErr(err)
		t.die(perr)
		<-t.rtok // wait out any reader, then fail what is pending
		t.sweep()
		t.rtok <- struct{}{}
		switch {
		case c.err != nil:
			return nil, c.err
		case c.isDone():
			// The whole request got through and its reply was read before
			// the connection broke under the write's last step.
			return c, nil
		}
		return nil, perr
	}
	return c, nil
}

// send writes the call's frame in one vectored write: header and slot
// vector, then (for writes) the caller's pages as they are.
func (t *Transport) send(c *call, payload []byte) error {
	var bufs net.Buffers
	switch c.op {
	case wire.TypeRead, wire.TypeWrite, wire.TypeFree:
		n := len(c.entries)
		plen := wire.SlotVectorSize(n)
		if c.op == wire.TypeWrite {
			plen += n * fabric.PageSize
		}
		head := make([]byte, 0, wire.HeaderSize+wire.SlotVectorSize(n))
		head = wire.AppendHeader(head, wire.Header{Type: c.op, ID: c.id, Len: uint32(plen)})
		head = appendSlotVector(head, c.entries)
		bufs = make(net.Buffers, 1, 1+n)
		bufs[0] = head
		if c.op == wire.TypeWrite {
			for _, e := range c.entries {
				bufs = append(bufs, e.Buf)
			}
		}
	default:
		head := make([]byte, 0, wire.HeaderSize+len(payload))
		head = wire.AppendHeader(head, wire.Header{Type: c.op, ID: c.id, Len: uint32(len(payload))})
		bufs = net.Buffers{append(head, payload...)}
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_, err := bufs.WriteTo(t.conn) // a peer that stops reading is caught by the watchdog
	return err
}

func appendSlotVector(b []byte, entries []*fabric.SlotIO) []byte {
	slots := make([]uint64, len(entries))
	for i, e := range entries {
		slots[i] = e.Slot
	}
	return wire.AppendSlots(b, slots)
}

// wait blocks until c completes or ctx ends, reading replies itself while
// it holds the reading role. An abandoned call's reply is discarded when it
// arrives; a call whose reply is already being read is waited for, since
// the reader is writing into the caller's buffers.
func (t *Transport) wait(ctx context.Context, c *call) error {
	for !c.isDone() {
		select {
		case <-c.done:
		case <-ctx.Done():
			return t.abandon(c, ctx.Err())
		case <-t.rtok:
			if t.lead(ctx, c.isDone) {
				return t.abandon(c, ctx.Err())
			}
		}
	}
	return c.err
}

// abandon gives up on c unless its reply is already being read.
func (t *Transport) abandon(c *call, cause error) error {
	t.mu.Lock()
	if c.state == statePending && !c.isDone() {
		c.state = stateAbandoned
		t.mu.Unlock()
		<-t.window // the reply will be discarded; free the slot now
		return cause
	}
	t.mu.Unlock()
	<-c.done
	return c.err
}

// windowOpen reports whether a request could start now.
func (t *Transport) windowOpen() bool { return len(t.window) < cap(t.window) }

func (c *call) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// finish completes a call and returns its window slot (an abandoned call
// returned it already).
func (t *Transport) finish(c *call, err error) {
	if err != nil && c.err == nil {
		c.err = err
	}
	t.mu.Lock()
	abandoned := c.state == stateAbandoned
	t.mu.Unlock()
	close(c.done)
	if !abandoned {
		<-t.window
	}
}

// errRemote turns an Error frame into the call's error.
func (t *Transport) errRemote(c *call, re *wire.RemoteError) error {
	return fmt.Errorf("%v on %s: %w", c.op, t.addr, re)
}

var errUnknownReply = errors.New("reply to no pending request")
