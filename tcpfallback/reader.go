package tcpfallback

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// lead, called holding the reading role, keeps the calling goroutine the
// connection's reader until done() holds (its call completed, a window slot
// freed), or until ctx ends between two frames (cancelled is then true). The reading role is a token: exactly one waiting caller
// holds it and reads every reply, in whatever order the server sends them,
// straight into the buffers of the call each answers; a caller whose own
// reply arrives passes the role on. A caller alone on the connection thus
// reads its own reply, with no goroutine hand-off on the latency path.
//
// When the stream fails, the reader fails every pending call (sweep) with
// the recorded cause. Cancellation is honoured only between frames (a read
// deadline interrupts the wait for the next header), so a frame is never
// left half read.
func (t *Transport) lead(ctx context.Context, done func() bool) (cancelled bool) {
	defer func() { t.rtok <- struct{}{} }()
	if t.failure() != nil {
		t.sweep()
		return false
	}
	var m sync.Mutex
	var inFrame, fired, over bool
	stop := context.AfterFunc(ctx, func() {
		m.Lock()
		defer m.Unlock()
		if !inFrame && !over {
			fired = true
			_ = t.conn.SetReadDeadline(time.Now())
		}
	})
	defer func() {
		stop()
		m.Lock()
		over = true
		if fired {
			_ = t.conn.SetReadDeadline(time.Time{})
		}
		m.Unlock()
	}()
	for !done() {
		if ctx.Err() != nil {
			return true
		}
		if _, err := t.br.Peek(wire.HeaderSize); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() != nil {
				return true // nothing consumed: the stream is intact
			}
			t.fail(err)
			return false
		}
		m.Lock()
		inFrame = true
		if fired {
			_ = t.conn.SetReadDeadline(time.Time{})
			fired = false
		}
		m.Unlock()
		if err := t.readFrame(); err != nil {
			t.fail(err)
			return false
		}
		m.Lock()
		inFrame = false
		m.Unlock()
	}
	return false
}

// readFrame reads one reply and completes the call it answers.
func (t *Transport) readFrame() error {
	h, err := wire.ReadHeader(t.br)
	if err != nil {
		return err
	}
	t.mu.Lock()
	c := t.pending[h.ID]
	abandoned := false
	if c != nil {
		delete(t.pending, h.ID)
		abandoned = c.state == stateAbandoned
		if !abandoned {
			c.state = stateReading
		}
	}
	t.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%v id %d: %w: %w", h.Type, h.ID, errUnknownReply, fabric.ErrProtocol)
	}
	err = t.readReply(h, c, abandoned)
	t.progress.Store(time.Now().UnixNano())
	if err != nil {
		t.die(t.peerErr(err))
		t.finish(c, t.failure()) // ErrClosed if Close caused it
		return err
	}
	t.finish(c, nil)
	return nil
}

// fail records a broken stream and fails every pending call; the caller
// holds the reading role.
func (t *Transport) fail(err error) {
	t.die(t.peerErr(err))
	t.sweep()
}

// sweep fails every pending call with the recorded cause. Once the cause
// is set no call can register, so nothing is left behind.
func (t *Transport) sweep() {
	cause := t.failure()
	t.mu.Lock()
	calls := t.pending
	t.pending = map[uint32]*call{}
	t.mu.Unlock()
	for _, c := range calls {
		t.finish(c, cause)
	}
}

// readReply consumes one reply payload for c. An error return means the
// stream can no longer be trusted; a failed request is recorded in c.err.
func (t *Transport) readReply(h wire.Header, c *call, abandoned bool) error {
	switch h.Type {
	case wire.TypeError:
		p, err := readPayload(t.br, h, 3+512)
		if err != nil {
			return err
		}
		re, err := wire.ParseError(p)
		if err != nil {
			return err
		}
		c.err = t.errRemote(c, re)
		return nil
	case wire.TypeReadReply:
		if c.op != wire.TypeRead {
			break
		}
		n := len(c.entries)
		if int(h.Len) < wire.StatusesSize(n) {
			return fmt.Errorf("read reply: %d bytes for %d slots: %w", h.Len, n, fabric.ErrProtocol)
		}
		if cap(t.statuses) < wire.StatusesSize(n) {
			t.statuses = make([]byte, wire.StatusesSize(wire.MaxSlotsPerRequest))
		}
		sb := t.statuses[:wire.StatusesSize(n)]
		if _, err := io.ReadFull(t.br, sb); err != nil {
			return err
		}
		codes, ok, err := wire.ParseStatuses(sb, n)
		if err != nil {
			return err
		}
		if int(h.Len) != wire.StatusesSize(n)+ok*fabric.PageSize {
			return fmt.Errorf("read reply: %d bytes for %d pages: %w", h.Len, ok, fabric.ErrProtocol)
		}
		bufs := make([][]byte, 0, ok)
		for i, e := range c.entries {
			if codes[i] != byte(wire.CodeOK) {
				if !abandoned {
					e.Err = entryErr(e.Slot, wire.Code(codes[i]))
				}
				continue
			}
			if abandoned {
				if t.discard == nil {
					t.discard = make([]byte, fabric.PageSize)
				}
				bufs = append(bufs, t.discard)
			} else {
				bufs = append(bufs, e.Buf)
			}
		}
		return wire.ReadVectors(t.br, t.conn, bufs)
	case wire.TypeStatuses:
		if c.op != wire.TypeWrite && c.op != wire.TypeFree {
			break
		}
		n := len(c.entries)
		p, err := readPayload(t.br, h, wire.StatusesSize(n))
		if err != nil {
			return err
		}
		codes, _, err := wire.ParseStatuses(p, n)
		if err != nil {
			return err
		}
		if len(p) != wire.StatusesSize(n) {
			return fmt.Errorf("statuses: %d bytes for %d slots: %w", len(p), n, fabric.ErrProtocol)
		}
		if !abandoned {
			for i, e := range c.entries {
				if codes[i] != byte(wire.CodeOK) {
					e.Err = entryErr(e.Slot, wire.Code(codes[i]))
				}
			}
		}
		return nil
	case wire.TypeOpened, wire.TypeStatsReply, wire.TypeAck, wire.TypeRDMAConnect:
		if c.entries != nil {
			break
		}
		p, err := readPayload(t.br, h, wire.MaxRDMAParamsSize)
		if err != nil {
			return err
		}
		c.reply = p
		return nil
	}
	return fmt.Errorf("%v answered with %v: %w", c.op, h.Type, fabric.ErrProtocol)
}

func readPayload(r io.Reader, h wire.Header, limit int) ([]byte, error) {
	if int(h.Len) > limit {
		return nil, fmt.Errorf("%v: payload %d over %d: %w", h.Type, h.Len, limit, fabric.ErrProtocol)
	}
	p := make([]byte, h.Len)
	_, err := io.ReadFull(r, p)
	return p, err
}

// watchdog fails the connection when requests are pending and no reply has
// completed for Options.Timeout: a peer that hangs, or stops reading, is
// reported as dead instead of blocking callers forever. Checking on a
// ticker keeps timer updates off the per-request path.
func (t *Transport) watchdog() {
	tick := time.NewTicker(max(t.opts.Timeout/8, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-t.dead:
			return
		case now := <-tick.C:
			t.mu.Lock()
			busy := false
			for _, c := range t.pending {
				busy = busy || c.state != stateAbandoned
			}
			t.mu.Unlock()
			if busy && now.UnixNano()-t.progress.Load() > int64(t.opts.Timeout) {
				t.die(t.peerErr(fmt.Errorf("no reply for %v", t.opts.Timeout)))
			}
		}
	}
}
