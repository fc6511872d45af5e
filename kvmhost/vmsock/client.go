package vmsock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// DefaultTimeout bounds Dial and the requests that take no context.
const DefaultTimeout = 10 * time.Second

// Client is a connection to a runtime socket. It is safe for concurrent
// use: requests are pipelined and matched to replies by id.
type Client struct {
	path    string
	conn    *net.UnixConn
	fc      *fdConn
	welcome Welcome
	info    VMInfo
	wmu     sync.Mutex

	mu      sync.Mutex
	pending map[uint32]chan reply
	nextID  uint32
	err     error // why the connection ended; set once
	done    chan struct{}
}

type reply struct {
	h     Header
	p     []byte
	files []*os.File
	err   error
}

// A Client is the self-paging exchanger of fabric.Memory.
var _ fabric.Exchanger = (*Client)(nil)

// Dial connects to the runtime socket at path, negotiates the protocol
// version and fetches the VM's info, within DefaultTimeout.
func Dial(path string) (*Client, error) { return DialContext(context.Background(), path) }

// DialContext is Dial bounded by ctx (and DefaultTimeout if ctx has no deadline).
func DialContext(ctx context.Context, path string) (*Client, error) {
	ctx, cancel := withDefault(ctx)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		hint := ""
		if errors.Is(err, syscall.EACCES) {
			hint = " (the socket is mode 0600: run as the runtime's user or root)"
		} else if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			hint = " (is vmemtrans mainhost running with this --socket?)"
		}
		return nil, fmt.Errorf("runtime socket %s: %w: %w%s", path, fabric.ErrPeer, err, hint)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("runtime socket %s: not a unix connection", path)
	}
	fc, err := newFDConn(uc)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("runtime socket %s: %w", path, err)
	}
	c := &Client{path: path, conn: uc, fc: fc, pending: map[uint32]chan reply{}, done: make(chan struct{})}
	go c.readLoop()
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("runtime socket %s: %w", path, err)
	}
	return c, nil
}

func (c *Client) handshake(ctx context.Context) error {
	r, err := c.call(ctx, TypeHello, AppendHello(nil, Hello{Min: VersionMin, Max: VersionMax}), TypeWelcome)
	if err != nil {
		return err
	}
	w, err := ParseWelcome(r.p)
	if err != nil {
		return err
	}
	if w.Version < VersionMin || w.Version > VersionMax {
		return fmt.Errorf("runtime chose version %d, this client speaks %d..%d: %w", w.Version, VersionMin, VersionMax, ErrVersion)
	}
	c.welcome = w
	r, err = c.call(ctx, TypeGetInfo, nil, TypeInfo)
	if err != nil {
		return err
	}
	c.info, err = ParseInfo(r.p)
	return err
}

func withDefault(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}

// Version is the negotiated protocol version.
func (c *Client) Version() uint16 { return c.welcome.Version }

// Info is the VM's info as the runtime gave it at Dial.
func (c *Client) Info() VMInfo {
	v := c.info
	v.Layout = append([]fabric.PhysRange(nil), v.Layout...)
	v.Subhosts = make([]Subhost, len(c.info.Subhosts))
	for i, s := range c.info.Subhosts {
		s.Key = append([]byte(nil), s.Key...)
		v.Subhosts[i] = s
	}
	return v
}

// Files fetches new read-only descriptors of the guest RAM memfd and the
// location map. The caller owns and closes them.
func (c *Client) Files(ctx context.Context) (ram, locmap *os.File, err error) {
	ctx, cancel := withDefault(ctx)
	defer cancel()
	r, err := c.call(ctx, TypeGetFDs, nil, TypeFDs)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime socket %s: descriptors: %w", c.path, err)
	}
	return r.files[0], r.files[1], nil
}

// RAMFile fetches a read-only descriptor of the guest RAM memfd (offset == guest-physical address).
func (c *Client) RAMFile() (*os.File, error) {
	ram, lm, err := c.Files(context.Background())
	if err != nil {
		return nil, err
	}
	lm.Close()
	return ram, nil
}

// LocationMapFile fetches a read-only descriptor of the location map
// (open it with fabric.OpenLocationMapReadOnly).
func (c *Client) LocationMapFile() (*os.File, error) {
	ram, lm, err := c.Files(context.Background())
	if err != nil {
		return nil, err
	}
	ram.Close()
	return lm, nil
}

// Counters asks the runtime for its counters (page-ins, page-outs,
// exchanges, ...; see kvmhost.Runtime.Counters). A runtime that speaks
// only version 1 fails with ErrVersion.
func (c *Client) Counters(ctx context.Context) (map[string]uint64, error) {
	if c.welcome.Version < VersionStats {
		return nil, fmt.Errorf("runtime socket %s: stats need protocol version %d, the runtime speaks %d: %w",
			c.path, VersionStats, c.welcome.Version, ErrVersion)
	}
	ctx, cancel := withDefault(ctx)
	defer cancel()
	r, err := c.call(ctx, TypeGetStats, nil, TypeStats)
	if err != nil {
		return nil, fmt.Errorf("runtime socket %s: stats: %w", c.path, err)
	}
	cs, err := ParseStats(r.p)
	if err != nil {
		return nil, err
	}
	m := make(map[string]uint64, len(cs))
	for _, x := range cs {
		m[x.Name] = x.Value
	}
	return m, nil
}

// MakeResident asks the runtime to page gfns in and returns one result per
// GFN: nil when it is resident, else an error (a runtime refusal matches
// its sentinel with errors.Is, a lost connection wraps fabric.ErrPeer, an
// ended ctx its error). Long lists go out as several pipelined requests.
func (c *Client) MakeResident(ctx context.Context, gfns []fabric.GFN) []error {
	errs := make([]error, len(gfns))
	chunk := int(c.welcome.MaxGFNs)
	if chunk <= 0 {
		chunk = MaxGFNsPerRequest
	}
	if len(gfns) <= chunk {
		c.makeResident(ctx, gfns, errs)
		return errs
	}
	var wg sync.WaitGroup
	for lo := 0; lo < len(gfns); lo += chunk {
		part, out := gfns[lo:min(lo+chunk, len(gfns))], errs[lo:min(lo+chunk, len(gfns))]
		wg.Go(func() { c.makeResident(ctx, part, out) })
	}
	wg.Wait()
	return errs
}

func (c *Client) makeResident(ctx context.Context, gfns []fabric.GFN, out []error) {
	r, err := c.call(ctx, TypeMakeResident, AppendGFNs(nil, gfns), TypeResults)
	var res []error
	if err == nil {
		res, err = ParseResults(r.p)
		if err == nil && len(res) != len(gfns) {
			err = fmt.Errorf("results: %d for %d gfns: %w", len(res), len(gfns), fabric.ErrProtocol)
		}
	}
	for i, g := range gfns {
		switch {
		case err != nil:
			out[i] = fmt.Errorf("make gfn %#x resident: %w", uint64(g), err)
		case res[i] != nil:
			out[i] = fmt.Errorf("make gfn %#x resident: %w", uint64(g), res[i])
		}
	}
}

// Close ends the connection; requests in flight fail with fabric.ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("runtime socket %s: client closed: %w", c.path, fabric.ErrClosed)
	}
	c.mu.Unlock()
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// call sends one request and waits for its reply, which must be of type want.
func (c *Client) call(ctx context.Context, t Type, payload []byte, want Type) (reply, error) {
	if err := ctx.Err(); err != nil {
		return reply{}, err
	}
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return reply{}, err
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultTimeout)
	}
	_ = c.conn.SetWriteDeadline(dl)
	_, err := c.conn.Write(buildFrame(t, id, payload))
	c.wmu.Unlock()
	if err != nil {
		err = c.sendFailed(ctx, t, err)
	}
	if err == nil {
		select {
		case r := <-ch:
			return checkReply(r, want)
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	c.mu.Lock()
	_, waiting := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !waiting { // the reader took it: its reply is on the way
		closeFiles((<-ch).files)
	}
	return reply{}, err
}

// sendFailed turns a failed request write into the error to report. A
// runtime that hung up first (refusing this client, say) left its reason
// in the stream: wait for the reader to reach it.
func (c *Client) sendFailed(ctx context.Context, t Type, err error) error {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
		c.mu.Lock()
		cerr := c.err
		c.mu.Unlock()
		var re *RemoteError
		if errors.As(cerr, &re) {
			return cerr
		}
	}
	c.conn.Close() // a half-written frame leaves the stream unusable
	return fmt.Errorf("send %v: %w: %w", t, fabric.ErrPeer, err)
}

func checkReply(r reply, want Type) (reply, error) {
	switch {
	case r.err != nil:
		return reply{}, r.err
	case r.h.Type == want:
		return r, nil
	case r.h.Type == TypeError:
		re, err := ParseError(r.p)
		if err != nil {
			return reply{}, err
		}
		return reply{}, re
	}
	closeFiles(r.files)
	return reply{}, fmt.Errorf("%v frame answers a request expecting %v: %w", r.h.Type, want, fabric.ErrProtocol)
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// readLoop reads replies and hands each to its caller until the
// connection ends, then fails every pending request with the reason.
func (c *Client) readLoop() {
	br := bufio.NewReaderSize(c.fc, 64<<10)
	err := c.readReplies(br)
	c.conn.Close()
	c.fc.closeQueued()
	c.mu.Lock()
	if c.err == nil {
		var re *RemoteError
		if errors.As(err, &re) {
			c.err = err
		} else {
			c.err = fmt.Errorf("connection lost: %w: %w", fabric.ErrPeer, err)
		}
	}
	for id, ch := range c.pending {
		ch <- reply{err: c.err}
		delete(c.pending, id)
	}
	c.mu.Unlock()
	close(c.done)
}

func (c *Client) readReplies(br *bufio.Reader) error {
	for {
		h, p, err := readFrame(br, replyLimit, nil)
		if err != nil {
			return err
		}
		if h.Type.request() {
			return fmt.Errorf("%v frame from the runtime: %w", h.Type, fabric.ErrProtocol)
		}
		var files []*os.File
		if h.Type == TypeFDs {
			n, err := ParseFDs(p)
			if err != nil {
				return err
			}
			if files, err = c.fc.popFiles(n, "guest-ram", "location-map"); err != nil {
				return err
			}
		}
		if h.ID == 0 {
			closeFiles(files)
			if h.Type != TypeError {
				return fmt.Errorf("%v frame with id 0: %w", h.Type, fabric.ErrProtocol)
			}
			re, err := ParseError(p)
			if err != nil {
				return err
			}
			return re
		}
		c.mu.Lock()
		ch := c.pending[h.ID]
		delete(c.pending, h.ID)
		c.mu.Unlock()
		if ch == nil { // its caller gave up
			closeFiles(files)
			continue
		}
		ch <- reply{h: h, p: p, files: files}
	}
}
