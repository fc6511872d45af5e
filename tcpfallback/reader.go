package tcpfallback

import (
	"fmt"
	"io"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// readLoop reads every reply, in whatever order the server sends them, into
// the buffers of the call it answers. When the connection fails it fails
// every pending call with the recorded cause and exits.
func (t *Transport) readLoop() {
	var statuses []byte
	discard := make([]byte, fabric.PageSize)
	var err error
	for {
		var h control.Header
		h, err = control.ReadHeader(t.br)
		if err != nil {
			break
		}
		t.mu.Lock()
		c := t.pending[h.ID]
		if c != nil {
			delete(t.pending, h.ID)
			if c.state == statePending {
				c.state = stateReading
			}
		}
		t.mu.Unlock()
		if c == nil {
			err = fmt.Errorf("%v id %d: %w: %w", h.Type, h.ID, errUnknownReply, fabric.ErrProtocol)
			break
		}
		err = t.readReply(h, c, &statuses, discard)
		t.mu.Lock()
		idle := len(t.pending) == 0
		if idle {
			_ = t.conn.SetReadDeadline(time.Time{})
		} else {
			_ = t.conn.SetReadDeadline(time.Now().Add(t.opts.Timeout))
		}
		t.mu.Unlock()
		if err != nil {
			t.die(t.peerErr(err))
			t.finish(c, t.failure()) // ErrClosed if Close caused it
			break
		}
		t.finish(c, nil)
	}
	t.die(t.peerErr(err))
	cause := t.failure()
	t.mu.Lock()
	calls := t.pending
	t.pending = map[uint32]*call{}
	t.mu.Unlock()
	for _, c := range calls {
		t.finish(c, cause)
	}
	close(t.done)
}

// readReply consumes one reply payload for c. An error return means the
// stream can no longer be trusted; a failed request is recorded in c.err.
func (t *Transport) readReply(h control.Header, c *call, statuses *[]byte, discard []byte) error {
	abandoned := c.state == stateAbandoned // set before the reader took c; stable now
	switch h.Type {
	case control.TypeError:
		p, err := readPayload(t.br, h, 3+512)
		if err != nil {
			return err
		}
		re, err := control.ParseError(p)
		if err != nil {
			return err
		}
		c.err = t.errRemote(c, re)
		return nil
	case control.TypeReadReply:
		if c.op != control.TypeRead {
			break
		}
		n := len(c.entries)
		if int(h.Len) < control.StatusesSize(n) {
			return fmt.Errorf("read reply: %d bytes for %d slots: %w", h.Len, n, fabric.ErrProtocol)
		}
		if cap(*statuses) < control.StatusesSize(n) {
			*statuses = make([]byte, control.StatusesSize(control.MaxSlotsPerRequest))
		}
		sb := (*statuses)[:control.StatusesSize(n)]
		if _, err := io.ReadFull(t.br, sb); err != nil {
			return err
		}
		codes, ok, err := control.ParseStatuses(sb, n)
		if err != nil {
			return err
		}
		if int(h.Len) != control.StatusesSize(n)+ok*fabric.PageSize {
			return fmt.Errorf("read reply: %d bytes for %d pages: %w", h.Len, ok, fabric.ErrProtocol)
		}
		bufs := make([][]byte, 0, ok)
		for i, e := range c.entries {
			if codes[i] != byte(control.CodeOK) {
				if !abandoned {
					e.Err = entryErr(e.Slot, control.Code(codes[i]))
				}
				continue
			}
			if abandoned {
				bufs = append(bufs, discard)
			} else {
				bufs = append(bufs, e.Buf)
			}
		}
		return control.ReadVectors(t.br, t.conn, bufs)
	case control.TypeStatuses:
		if c.op != control.TypeWrite && c.op != control.TypeFree {
			break
		}
		n := len(c.entries)
		p, err := readPayload(t.br, h, control.StatusesSize(n))
		if err != nil {
			return err
		}
		codes, _, err := control.ParseStatuses(p, n)
		if err != nil {
			return err
		}
		if len(p) != control.StatusesSize(n) {
			return fmt.Errorf("statuses: %d bytes for %d slots: %w", len(p), n, fabric.ErrProtocol)
		}
		if !abandoned {
			for i, e := range c.entries {
				if codes[i] != byte(control.CodeOK) {
					e.Err = entryErr(e.Slot, control.Code(codes[i]))
				}
			}
		}
		return nil
	case control.TypeOpened, control.TypeStatsReply, control.TypeAck, control.TypeRDMAConnect:
		if c.entries != nil {
			break
		}
		p, err := readPayload(t.br, h, 1+control.MaxQPs*control.QPInfoSize)
		if err != nil {
			return err
		}
		c.reply = p
		return nil
	}
	return fmt.Errorf("%v answered with %v: %w", c.op, h.Type, fabric.ErrProtocol)
}

func readPayload(r io.Reader, h control.Header, limit int) ([]byte, error) {
	if int(h.Len) > limit {
		return nil, fmt.Errorf("%v: payload %d over %d: %w", h.Type, h.Len, limit, fabric.ErrProtocol)
	}
	p := make([]byte, h.Len)
	_, err := io.ReadFull(r, p)
	return p, err
}
