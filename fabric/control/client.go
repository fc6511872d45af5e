package control

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// DialOptions configure a client connection.
type DialOptions struct {
	// TLS, when set, runs the protocol inside a TLS client connection.
	TLS *tls.Config
	// Timeout bounds connect plus authentication when ctx has no
	// earlier deadline (default 10s).
	Timeout time.Duration
}

// DialAuth connects to a sub-host and authenticates as vm with key. It
// returns the connection and a reader over it positioned after the
// handshake. Errors wrap fabric.ErrAuth for a refused key and fabric.ErrPeer
// for an unreachable or failing server; both name the address.
func DialAuth(ctx context.Context, addr, vm string, key []byte, opts DialOptions) (net.Conn, *bufio.Reader, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sub-host %s: %w: %w", addr, fabric.ErrPeer, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if opts.TLS != nil {
		tc := tls.Client(c, opts.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("sub-host %s: tls: %w: %w", addr, fabric.ErrAuth, err)
		}
		c = tc
	}
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	// Room for a reply header, its statuses and a page: a one-page read
	// arrives in one system call; larger replies are read around it.
	br := bufio.NewReaderSize(c, 2*fabric.PageSize)
	err = clientAuth(struct {
		io.Reader
		io.Writer
	}{br, c}, vm, key)
	if !stop() && err == nil {
		err = ctx.Err() // the deadline may be cut short any moment: start afresh
	}
	if err != nil {
		c.Close()
		if isAuthErr(err) {
			return nil, nil, fmt.Errorf("sub-host %s: %w", addr, err)
		}
		return nil, nil, fmt.Errorf("sub-host %s: %w: %w", addr, fabric.ErrPeer, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, br, nil
}

func isAuthErr(err error) bool {
	return wire.CodeOf(err) == wire.CodeAuth || wire.CodeOf(err) == wire.CodeProtocol
}

// Client is a simple synchronous control client: one request at a time.
// The pipelined page path lives in tcpfallback; Client serves setup, stats
// and the baseline measurements.
type Client struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	id   atomic.Uint32
}

// Dial connects and authenticates a Client.
func Dial(ctx context.Context, addr, vm string, key []byte, opts DialOptions) (*Client, error) {
	c, br, err := DialAuth(ctx, addr, vm, key, opts)
	if err != nil {
		return nil, err
	}
	return &Client{addr: addr, conn: c, br: br}, nil
}

func (c *Client) nextID() uint32 { return c.id.Add(1) }

func (c *Client) peerErr(err error) error {
	return fmt.Errorf("sub-host %s: %w: %w", c.addr, fabric.ErrPeer, err)
}

// call sends one request and reads its reply, turning Error frames into errors.
func (c *Client) call(t wire.Type, payload []byte, want wire.Type) ([]byte, error) {
	id := c.nextID()
	if err := wire.WriteFrame(c.conn, t, id, payload); err != nil {
		return nil, c.peerErr(err)
	}
	h, p, err := wire.ReadFrame(c.br, wire.MaxPayload)
	if err != nil {
		return nil, c.peerErr(err)
	}
	if h.ID != id {
		return nil, fmt.Errorf("sub-host %s: reply id %d to request %d: %w", c.addr, h.ID, id, fabric.ErrProtocol)
	}
	switch h.Type {
	case want:
		return p, nil
	case wire.TypeError:
		re, err := wire.ParseError(p)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%v: %w", t, re)
	}
	return nil, fmt.Errorf("sub-host %s: %v answered with %v: %w", c.addr, t, h.Type, fabric.ErrProtocol)
}

// Open opens (slots 0) or creates the region of vm and returns its size.
func (c *Client) Open(vm string, slots uint64) (uint64, error) {
	p, err := c.call(wire.TypeOpen, wire.AppendOpen(nil, wire.Open{VM: vm, Slots: slots}), wire.TypeOpened)
	if err != nil {
		return 0, err
	}
	return wire.ParseUint64(p)
}

// Stats describes the open region.
func (c *Client) Stats() (Stats, error) {
	p, err := c.call(wire.TypeStats, nil, wire.TypeStatsReply)
	if err != nil {
		return Stats{}, err
	}
	return wire.ParseStats(p)
}

// RDMAConnect exchanges queue-pair parameters with the server's RDMA
// responder; the error wraps fabric.ErrNoRDMA when the sub-host has none.
func (c *Client) RDMAConnect(local RDMAParams) (RDMAParams, error) {
	p, err := c.call(wire.TypeRDMAConnect, wire.AppendRDMAParams(nil, local), wire.TypeRDMAConnect)
	if err != nil {
		return RDMAParams{}, err
	}
	return wire.ParseRDMAParams(p)
}

// RDMADisconnect releases the server queue pairs returned by RDMAConnect.
func (c *Client) RDMADisconnect(server RDMAParams) error {
	_, err := c.call(wire.TypeRDMADisconnect, wire.AppendRDMAParams(nil, server), wire.TypeAck)
	return err
}

// Close says goodbye and closes the connection.
func (c *Client) Close() error {
	_ = c.conn.SetDeadline(time.Now().Add(time.Second))
	_, _ = c.call(wire.TypeClose, nil, wire.TypeAck)
	return c.conn.Close()
}
