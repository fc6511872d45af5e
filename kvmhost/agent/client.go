package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// DefaultTimeout bounds one touch answer when the configuration leaves it zero.
const DefaultTimeout = 2 * time.Second

// HandshakeTimeout bounds connecting and authenticating when the caller's
// context has no deadline. It is longer than an answer's: an agent on a
// serial port picks a new host connection up only at its next reopen, and
// a guest under emulation is slow to schedule it.
const HandshakeTimeout = 10 * time.Second

// ClientConfig configures a Client. Zero values take the defaults.
type ClientConfig struct {
	Key []byte // the pre-shared key (required)
	// Timeout bounds one MakeResident's wait for answers (DefaultTimeout);
	// an agent that does not answer in time is silent.
	Timeout time.Duration
	// SlowAfter is the answer time past which an answer counts as slow
	// (Timeout/2); SlowStrikes slow answers running make the agent slow (3).
	SlowAfter   time.Duration
	SlowStrikes int
	// LieStrikes is how many audited batches running in which most frames
	// answered done had not moved make the agent a liar (2).
	LieStrikes int
	// RetryAfter is how long the client stops asking an agent found
	// silent, slow or lying before it tries again (1 minute; negative: never).
	RetryAfter time.Duration
	// Redial reconnects a lost connection when the client next asks
	// (Dial sets it; nil: a lost connection stays lost).
	Redial func(ctx context.Context) (net.Conn, error)
	// Name names the agent in logs (its address).
	Name string
	Log  zerolog.Logger
}

// ClientStats count what a Client has seen since it was made.
type ClientStats struct {
	Requests    uint64 // touch requests answered
	Done        uint64 // frames answered done
	Failed      uint64 // frames answered failed, or not answered
	Skipped     uint64 // frames not asked while the agent was distrusted
	Timeouts    uint64 // requests the agent did not answer in time
	SlowAnswers uint64 // answers slower than SlowAfter
	Unmoved     uint64 // frames answered done that the location map showed not moved
	Trips       uint64 // times the client stopped asking the agent
	Distrusted  bool   // the client is not asking the agent now
	Reason      string // why, when Distrusted
}

type clientCounters struct {
	requests, done, failed, skipped, timeouts, slow, unmoved atomic.Uint64
}

// Client asks one agent to make frames resident. It is a fabric.Exchanger
// and a fabric.ExchangeAuditor, and safe for concurrent use.
type Client struct {
	cfg   ClientConfig
	stats clientCounters
	br    breaker

	mu     sync.Mutex
	cc     *clientConn
	closed bool
}

var (
	_ fabric.Exchanger       = (*Client)(nil)
	_ fabric.ExchangeAuditor = (*Client)(nil)
)

func (cfg *ClientConfig) defaults() error {
	if err := CheckKey(cfg.Key); err != nil {
		return fmt.Errorf("agent client: %w", err)
	}
	cfg.Key = append([]byte(nil), cfg.Key...)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.SlowAfter <= 0 {
		cfg.SlowAfter = cfg.Timeout / 2
	}
	if cfg.SlowStrikes <= 0 {
		cfg.SlowStrikes = 3
	}
	if cfg.LieStrikes <= 0 {
		cfg.LieStrikes = 2
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Minute
	}
	if cfg.Name == "" {
		cfg.Name = "agent"
	}
	return nil
}

// NewClient authenticates with the agent on c (within ctx, and
// HandshakeTimeout if ctx has none) and returns a client that asks it. The
// client owns c. A wrong key fails with an error wrapping fabric.ErrAuth.
func NewClient(ctx context.Context, c net.Conn, cfg ClientConfig) (*Client, error) {
	if err := cfg.defaults(); err != nil {
		c.Close()
		return nil, err
	}
	ctx, cancel := withDefault(ctx)
	defer cancel()
	cc, err := handshake(ctx, c, cfg.Key)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("agent %s: %w", cfg.Name, err)
	}
	cl := &Client{cfg: cfg, cc: cc}
	cl.br.init(&cl.cfg)
	return cl, nil
}

func withDefault(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, HandshakeTimeout)
}

// Version is the protocol version of the first connection.
func (cl *Client) Version() uint16 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.cc == nil {
		return 0
	}
	return cl.cc.version
}

// Stats returns the client's counters.
func (cl *Client) Stats() ClientStats {
	s := &cl.stats
	open, reason, trips := cl.br.state()
	return ClientStats{
		Requests: s.requests.Load(), Done: s.done.Load(), Failed: s.failed.Load(), Skipped: s.skipped.Load(),
		Timeouts: s.timeouts.Load(), SlowAnswers: s.slow.Load(), Unmoved: s.unmoved.Load(),
		Trips: trips, Distrusted: open, Reason: reason,
	}
}

// Ping checks that the agent answers (an empty touch request) within ctx
// and the client's Timeout.
func (cl *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
	defer cancel()
	cc, err := cl.conn(ctx)
	if err != nil {
		return err
	}
	_, err = cc.touch(ctx, nil)
	return err
}

// MakeResident asks the agent to touch gfns and returns one result per
// GFN: nil for a frame the agent says it touched (which the caller must
// verify: the agent is not trusted), else an error wrapping the agent's
// reason (ErrNotRAM, ErrTouch, ...), ErrAgentDown while the agent is
// distrusted, fabric.ErrPeer for a lost agent, or the timeout.
func (cl *Client) MakeResident(ctx context.Context, gfns []fabric.GFN) []error {
	errs := make([]error, len(gfns))
	fail := func(err error) []error {
		for i, g := range gfns {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("make gfn %#x resident through agent %s: %w", uint64(g), cl.cfg.Name, err)
			}
		}
		return errs
	}
	if len(gfns) == 0 {
		return errs
	}
	if err := cl.br.allow(); err != nil {
		cl.stats.skipped.Add(uint64(len(gfns)))
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
	defer cancel()
	start := time.Now()
	cc, err := cl.conn(ctx)
	if err != nil {
		cl.stats.failed.Add(uint64(len(gfns)))
		cl.br.trip(fmt.Sprintf("unreachable: %v", err), &cl.cfg)
		return fail(err)
	}
	chunk := min(cc.maxGFNs, MaxGFNsPerRequest)
	var wg sync.WaitGroup
	var emu sync.Mutex
	var firstErr error
	for lo := 0; lo < len(gfns); lo += chunk {
		hi := min(lo+chunk, len(gfns))
		wg.Go(func() {
			rs, err := cc.touch(ctx, gfns[lo:hi])
			if err != nil {
				emu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				emu.Unlock()
				return
			}
			for i, r := range rs {
				if e := r.Err(); e != nil {
					errs[lo+i] = fmt.Errorf("agent %s: gfn %#x %v: %w", cl.cfg.Name, uint64(gfns[lo+i]), r, e)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		cl.stats.failed.Add(uint64(len(gfns)))
		switch {
		case errors.Is(firstErr, context.DeadlineExceeded):
			cl.stats.timeouts.Add(1)
			cl.br.trip(fmt.Sprintf("silent: no answer in %v", took.Round(time.Millisecond)), &cl.cfg)
		case errors.Is(firstErr, context.Canceled):
		default:
			cl.br.trip(fmt.Sprintf("failed: %v", firstErr), &cl.cfg)
		}
		for i := range errs {
			errs[i] = nil
		}
		return fail(firstErr)
	}
	var failed uint64
	for _, e := range errs {
		if e != nil {
			failed++
		}
	}
	cl.stats.requests.Add(1)
	cl.stats.done.Add(uint64(len(gfns)) - failed)
	cl.stats.failed.Add(failed)
	if took > cl.cfg.SlowAfter {
		cl.stats.slow.Add(1)
		cl.br.slow(took, &cl.cfg)
	} else {
		cl.br.answered()
	}
	return errs
}

// Audit hears how the agent's answers checked out against the location
// map: of done frames answered done, unmoved had not moved at all.
func (cl *Client) Audit(done, unmoved int) {
	if done <= 0 {
		return
	}
	cl.stats.unmoved.Add(uint64(unmoved))
	cl.br.audit(done, unmoved, &cl.cfg)
}

// conn is the live connection, redialled if it was lost and the client can.
func (cl *Client) conn(ctx context.Context) (*clientConn, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed {
		return nil, fmt.Errorf("agent client: %w", fabric.ErrClosed)
	}
	if cl.cc != nil && cl.cc.alive() {
		return cl.cc, nil
	}
	if cl.cfg.Redial == nil {
		if cl.cc != nil {
			cl.cc.mu.Lock()
			err := cl.cc.err
			cl.cc.mu.Unlock()
			return nil, err
		}
		return nil, fmt.Errorf("agent %s: no connection: %w", cl.cfg.Name, fabric.ErrPeer)
	}
	if cl.cc != nil {
		cl.cc.close()
		cl.cc = nil
	}
	c, err := cl.cfg.Redial(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w: %w", cl.cfg.Name, fabric.ErrPeer, err)
	}
	cc, err := handshake(ctx, c, cl.cfg.Key)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("agent %s: %w", cl.cfg.Name, err)
	}
	cl.cc = cc
	return cc, nil
}

// Close ends the connection; requests in flight fail with fabric.ErrClosed.
func (cl *Client) Close() error {
	cl.mu.Lock()
	cl.closed = true
	cc := cl.cc
	cl.cc = nil
	cl.mu.Unlock()
	if cc != nil {
		cc.close()
	}
	return nil
}
