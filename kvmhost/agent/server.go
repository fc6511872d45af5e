package agent

import (
	"bufio"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/accept"
)

// ServerConfig configures the agent's server. Zero durations take the defaults.
type ServerConfig struct {
	Key     []byte      // the pre-shared key (required, at least MinKeySize bytes)
	Toucher PageToucher // how pages are touched (required; Kcore in a guest)
	// HandshakeTimeout bounds the handshake from its first byte (10s).
	HandshakeTimeout time.Duration
	// FrameTimeout bounds one frame from its first byte to its last (10s).
	FrameTimeout time.Duration
	// IdleTimeout ends a connection that sends nothing for this long (0: never).
	IdleTimeout time.Duration
	// WriteTimeout bounds each reply write (10s).
	WriteTimeout time.Duration
	// TouchTimeout bounds one touch request (30s); frames not reached fail
	// with ReasonTimeout.
	TouchTimeout time.Duration
	Log          zerolog.Logger
}

// Stats counts what a server has done since it started.
type Stats struct {
	Connections    uint64 // connections that passed the handshake
	AuthFailures   uint64 // connections refused for a wrong key or a bad tag
	ProtocolErrors uint64 // connections closed for a malformed or unexpected frame
	Requests       uint64 // touch requests answered
	PagesTouched   uint64 // frames answered done
	PagesFailed    uint64 // frames answered with a failure
	Active         int64  // connections open now
}

type serverCounters struct {
	conns, authFail, protoErr, requests, touched, failed atomic.Uint64
	active                                               atomic.Int64
}

// Server answers touch requests on any number of connections.
type Server struct {
	cfg   ServerConfig
	stats serverCounters
	ctx   context.Context // ends at Close: cancels touches in progress
	stop  context.CancelFunc
	conns accept.Group[net.Conn]
}

// errNoClient ends a serial port's session that no client began (the
// port reads end-of-file while the host side is not connected).
var errNoClient = errors.New("no client on the port")

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("agent server closed")

// NewServer checks cfg and returns a server ready to Serve.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := CheckKey(cfg.Key); err != nil {
		return nil, fmt.Errorf("agent server: %w", err)
	}
	if cfg.Toucher == nil {
		return nil, errors.New("agent server: no page toucher")
	}
	cfg.Key = append([]byte(nil), cfg.Key...)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HandshakeTimeout, 10*time.Second)
	def(&cfg.FrameTimeout, 10*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.TouchTimeout, 30*time.Second)
	if cfg.IdleTimeout < 0 {
		cfg.IdleTimeout = 0
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ctx: ctx, stop: stop}
	s.conns.Closed, s.conns.Name = ErrServerClosed, "agent"
	s.conns.Failed = func(err error, pause time.Duration) {
		s.cfg.Log.Warn().Err(err).Dur("retried_after", pause).Msg("agent: accept failed")
	}
	return s, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Connections: c.conns.Load(), AuthFailures: c.authFail.Load(), ProtocolErrors: c.protoErr.Load(),
		Requests: c.requests.Load(), PagesTouched: c.touched.Load(), PagesFailed: c.failed.Load(),
		Active: c.active.Load(),
	}
}

// Serve accepts connections on l, one goroutine each, until the server is
// closed (ErrServerClosed) or l fails for good.
func (s *Server) Serve(l net.Listener) error {
	return s.conns.Serve(l, func(c net.Conn) (net.Conn, error) { return c, nil }, func(c net.Conn) { s.serve(c, false) })
}

// ServeConn serves one connection until it ends, then closes it. With
// waitFirst, the handshake's time starts at the client's first byte (a
// serial port opened before the host side connects).
func (s *Server) ServeConn(c net.Conn, waitFirst bool) error {
	var err error
	if !s.conns.Run(c, func(c net.Conn) { err = s.serve(c, waitFirst) }) {
		return ErrServerClosed
	}
	return err
}

// Close closes the listeners and every connection and waits for them.
func (s *Server) Close() error {
	s.stop()
	return s.conns.Close()
}

// conn is one client connection on the server.
type conn struct {
	srv     *Server
	c       net.Conn
	br      *bufio.Reader
	log     zerolog.Logger
	tags    *tagger
	payload []byte
	gfns    []fabric.GFN
	out     []byte
	// hsID is the id of the handshake frame being answered: a refusal in
	// the handshake echoes it, so a client on a shared stream (a serial
	// port) tells it from a stale frame of an earlier session.
	hsID uint32
}

// serve runs one connection and returns why it ended (nil: the client left).
func (s *Server) serve(c net.Conn, waitFirst bool) error {
	s.stats.active.Add(1)
	defer s.stats.active.Add(-1)
	defer c.Close()
	cn := &conn{srv: s, c: c, br: bufio.NewReaderSize(c, 4096), log: s.cfg.Log.With().Str("peer", peerName(c)).Logger()}
	err := cn.handshake(waitFirst)
	if err == nil {
		cn.log.Debug().Msg("agent: client authenticated")
		err = cn.loop()
	}
	switch {
	case errors.Is(err, errNoClient):
		return nil
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		cn.log.Debug().Msg("agent: client left")
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		cn.log.Info().Msg("agent: client too slow; closing")
		cn.fatal(fmt.Errorf("frame or handshake not completed in time: %w", context.DeadlineExceeded))
	case errors.Is(err, fabric.ErrAuth):
		s.stats.authFail.Add(1)
		cn.log.Warn().Err(err).Msg("agent: refusing a client")
		cn.fatal(err)
	case errors.Is(err, fabric.ErrProtocol), errors.Is(err, ErrVersion):
		s.stats.protoErr.Add(1)
		cn.log.Warn().Err(err).Msg("agent: closing a connection")
		cn.fatal(err)
	default:
		cn.log.Warn().Err(err).Msg("agent: closing a connection")
	}
	return err
}

func peerName(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return "?"
}

func (cn *conn) handshake(waitFirst bool) error {
	cfg := &cn.srv.cfg
	if waitFirst {
		_ = cn.c.SetReadDeadline(time.Time{})
		if _, err := cn.br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return errNoClient
			}
			return err
		}
	}
	_ = cn.c.SetReadDeadline(time.Now().Add(cfg.HandshakeTimeout))
	h, p, err := readFrame(cn.br, requestLimit, nil, nil)
	if err != nil {
		return err
	}
	cn.hsID = h.ID
	if h.Type != TypeHello {
		return fmt.Errorf("first frame is %v, want hello: %w", h.Type, fabric.ErrProtocol)
	}
	hello, err := ParseHello(p)
	if err != nil {
		return err
	}
	v, err := negotiate(hello)
	if err != nil {
		return err
	}
	sn, err := newNonce()
	if err != nil {
		return fmt.Errorf("agent nonce: %w", err)
	}
	ch := Challenge{Version: v, MaxGFNs: MaxGFNsPerRequest, Nonce: sn, Proof: serverProof(cfg.Key, v, &hello.Nonce, &sn)}
	if err := cn.write(TypeChallenge, h.ID, AppendChallenge(nil, ch)); err != nil {
		return err
	}
	cn.hsID = 0
	h, p, err = readFrame(cn.br, requestLimit, nil, nil)
	if err != nil {
		return err
	}
	cn.hsID = h.ID
	if h.Type != TypeAuth {
		return fmt.Errorf("%v frame in the handshake, want auth: %w", h.Type, fabric.ErrProtocol)
	}
	proof, err := ParseAuth(p)
	if err != nil {
		return err
	}
	if want := clientProof(cfg.Key, v, &hello.Nonce, &sn); !hmac.Equal(proof[:], want[:]) {
		return fmt.Errorf("client proof does not match the agent's key: %w", fabric.ErrAuth)
	}
	cn.srv.stats.conns.Add(1)
	if err := cn.write(TypeWelcome, h.ID, nil); err != nil {
		return err
	}
	cn.hsID = 0
	cn.tags = newTagger(cfg.Key, &hello.Nonce, &sn, true)
	return nil
}

// loop answers touch requests in order until the client leaves or breaks
// the protocol.
func (cn *conn) loop() error {
	cfg := &cn.srv.cfg
	for {
		var idle time.Time
		if cfg.IdleTimeout > 0 {
			idle = time.Now().Add(cfg.IdleTimeout)
		}
		_ = cn.c.SetReadDeadline(idle)
		if _, err := cn.br.Peek(1); err != nil {
			return err
		}
		_ = cn.c.SetReadDeadline(time.Now().Add(cfg.FrameTimeout))
		h, p, err := readFrame(cn.br, requestLimit, cn.tags, cn.payload)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%v frame cut short: %w", h.Type, io.ErrUnexpectedEOF)
			}
			return err
		}
		if cap(p) > cap(cn.payload) {
			cn.payload = p[:0]
		}
		if h.Type != TypeTouch {
			return fmt.Errorf("%v frame after the handshake: %w", h.Type, fabric.ErrProtocol)
		}
		if cn.gfns, err = ParseGFNs(cn.gfns, p); err != nil {
			return err
		}
		if err := cn.write(TypeResults, h.ID, AppendResults(nil, cn.touch(cn.gfns))); err != nil {
			return err
		}
	}
}

func (cn *conn) touch(gfns []fabric.GFN) []Reason {
	s := cn.srv
	rs := make([]Reason, len(gfns))
	if len(gfns) == 0 {
		return rs
	}
	s.stats.requests.Add(1)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.TouchTimeout)
	defer cancel()
	errs := make([]error, len(gfns))
	s.cfg.Toucher.Touch(ctx, gfns, errs)
	var failed uint64
	for i, err := range errs {
		rs[i] = ReasonOf(err)
		if err != nil {
			failed++
			cn.log.Debug().Err(err).Uint64("gfn", uint64(gfns[i])).Msg("agent: touch failed")
		}
	}
	s.stats.touched.Add(uint64(len(gfns)) - failed)
	s.stats.failed.Add(failed)
	return rs
}

// write sends one frame (tagged once the handshake is done).
func (cn *conn) write(t Type, id uint32, payload []byte) error {
	cn.out = appendFrame(cn.out[:0], cn.tags, t, id, payload)
	_ = cn.c.SetWriteDeadline(time.Now().Add(cn.srv.cfg.WriteTimeout))
	_, err := cn.c.Write(cn.out)
	return err
}

// fatal tells the client why the connection ends (an error frame with id
// 0, or the handshake frame's it refuses; tagged once authenticated). On a
// socket it then drains what the client still sends for a moment, so that
// closing does not reset the peer before it has read the reason; a serial
// port is not drained (what follows is the next session's).
func (cn *conn) fatal(err error) {
	if cn.write(TypeError, cn.hsID, AppendError(nil, err)) != nil {
		return
	}
	cw, ok := cn.c.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	_ = cw.CloseWrite()
	_ = cn.c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, cn.br, lingerBytes)
}

// How long, and how much, a closing connection keeps reading.
const (
	lingerTime  = 250 * time.Millisecond
	lingerBytes = 1 << 20
)
