package control

import (
	"fmt"
	"io"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// baseline serves a bare stream or a bare ping-pong on the connection, so a
// benchmark can compare the page protocol with plain TCP between the same
// two processes over the same path. Replies queued before it are flushed
// first; afterwards the connection returns to frames.
func (ss *session) baseline(h wire.Header) error {
	p, err := ss.readPayload(h, 12)
	if err != nil {
		return err
	}
	ss.quiesce()
	if h.Type == wire.TypeBaselineStream {
		s, err := wire.ParseBaselineStream(p)
		if err != nil {
			return err
		}
		if s.Total > ss.srv.cfg.BaselineLimit {
			return fmt.Errorf("baseline stream of %d bytes over the limit of %d: %w", s.Total, ss.srv.cfg.BaselineLimit, fabric.ErrProtocol)
		}
		buf := make([]byte, s.Chunk)
		for left := s.Total; left > 0; {
			n := min(left, uint64(len(buf)))
			_ = ss.conn.SetWriteDeadline(time.Now().Add(ss.srv.cfg.WriteTimeout))
			if _, err := ss.conn.Write(buf[:n]); err != nil {
				return fmt.Errorf("baseline stream: %w", err)
			}
			left -= n
		}
		return nil
	}
	b, err := wire.ParseBaselinePing(p)
	if err != nil {
		return err
	}
	req := make([]byte, b.Request)
	rep := make([]byte, b.Reply)
	_ = ss.conn.SetWriteDeadline(time.Time{})
	for range b.Rounds {
		if _, err := io.ReadFull(ss.br, req); err != nil {
			return fmt.Errorf("baseline ping: %w", err)
		}
		if _, err := ss.conn.Write(rep); err != nil {
			return fmt.Errorf("baseline ping: %w", err)
		}
	}
	return nil
}

// BaselineStream receives total bytes streamed by the server in chunks of
// chunk bytes, read into a buffer of the same size, and returns the rate in
// bytes per second.
func (c *Client) BaselineStream(total uint64, chunk uint32) (float64, error) {
	req := wire.BaselineStream{Total: total, Chunk: chunk}
	if _, err := wire.ParseBaselineStream(wire.AppendBaselineStream(nil, req)); err != nil {
		return 0, err
	}
	buf := make([]byte, chunk)
	start := time.Now()
	if err := wire.WriteFrame(c.conn, wire.TypeBaselineStream, c.nextID(), wire.AppendBaselineStream(nil, req)); err != nil {
		return 0, c.peerErr(err)
	}
	for left := total; left > 0; {
		n, err := c.br.Read(buf[:min(left, uint64(len(buf)))])
		if err != nil {
			return 0, c.peerErr(err)
		}
		left -= uint64(n)
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// BaselinePing runs rounds raw exchanges (request bytes out, reply bytes
// back) and returns the round-trip time of each.
func (c *Client) BaselinePing(rounds, request, reply uint32) ([]time.Duration, error) {
	req := wire.BaselinePing{Rounds: rounds, Request: request, Reply: reply}
	if _, err := wire.ParseBaselinePing(wire.AppendBaselinePing(nil, req)); err != nil {
		return nil, err
	}
	if err := wire.WriteFrame(c.conn, wire.TypeBaselinePing, c.nextID(), wire.AppendBaselinePing(nil, req)); err != nil {
		return nil, c.peerErr(err)
	}
	out := make([]byte, request)
	in := make([]byte, reply)
	rtts := make([]time.Duration, 0, rounds)
	for range rounds {
		t0 := time.Now()
		if _, err := c.conn.Write(out); err != nil {
			return rtts, c.peerErr(err)
		}
		if _, err := io.ReadFull(c.br, in); err != nil {
			return rtts, c.peerErr(err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	return rtts, nil
}
