package vmsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/internal/accept"
)

// ServerConfig configures a Server. Zero durations take the defaults.
type ServerConfig struct {
	Backend Backend // the VM to serve (required)
	// HandshakeTimeout bounds the time from accept to a complete hello (10s).
	HandshakeTimeout time.Duration
	// FrameTimeout bounds the time from a frame's first byte to its last (10s).
	FrameTimeout time.Duration
	// IdleTimeout closes a connection that sends no frame for this long
	// (0: never; an IDS may hold its connection for the VM's lifetime).
	IdleTimeout time.Duration
	// WriteTimeout bounds each reply write (10s).
	WriteTimeout time.Duration
	// RequestTimeout bounds one make-resident request in the backend (60s).
	RequestTimeout time.Duration
	// MaxInflight bounds the make-resident requests one connection has in
	// the backend at once; further frames wait (4).
	MaxInflight int
	Log         zerolog.Logger
}

// Stats counts what a server has done since it started.
type Stats struct {
	Connections      uint64 // clients served (passed the peer check)
	Refused          uint64 // clients refused by the peer check
	Active           int64  // connections open now
	Requests         uint64 // requests answered, of every type
	ResidentRequests uint64 // make-resident requests
	ResidentGFNs     uint64 // GFNs made resident
	FailedGFNs       uint64 // GFNs whose make-resident failed
	ProtocolErrors   uint64 // connections closed for a malformed or unexpected frame
}

type counters struct {
	connections, refused, requests, residentRequests, residentGFNs, failedGFNs, protocolErrors atomic.Uint64
	active                                                                                     atomic.Int64
}

// Server serves the runtime socket protocol for one Backend.
type Server struct {
	cfg   ServerConfig
	uid   uint32
	stats counters
	conns accept.Group[*net.UnixConn]
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("runtime socket server closed")

// NewServer checks cfg and returns a server ready to Serve. It serves
// clients running as the effective uid of this process, and root.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("runtime socket server: no backend")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HandshakeTimeout, 10*time.Second)
	def(&cfg.FrameTimeout, 10*time.Second)
	def(&cfg.WriteTimeout, 10*time.Second)
	def(&cfg.RequestTimeout, 60*time.Second)
	if cfg.IdleTimeout < 0 {
		cfg.IdleTimeout = 0
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 4
	}
	s := &Server{cfg: cfg, uid: uint32(os.Geteuid())}
	s.conns.Closed, s.conns.Name = ErrServerClosed, "runtime socket"
	s.conns.Failed = func(err error, pause time.Duration) {
		s.cfg.Log.Warn().Err(err).Dur("retried_after", pause).Msg("runtime socket: accept failed")
	}
	return s, nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Connections: c.connections.Load(), Refused: c.refused.Load(), Active: c.active.Load(),
		Requests: c.requests.Load(), ResidentRequests: c.residentRequests.Load(),
		ResidentGFNs: c.residentGFNs.Load(), FailedGFNs: c.failedGFNs.Load(),
		ProtocolErrors: c.protocolErrors.Load(),
	}
}

// Serve accepts connections on l (a unix listener, see Listen) until the
// server is closed (returning ErrServerClosed) or l fails.
func (s *Server) Serve(l net.Listener) error {
	return s.conns.Serve(l, unixConn, s.serve)
}

func unixConn(c net.Conn) (*net.UnixConn, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("runtime socket: listener gave a %T, want a unix connection", c)
	}
	return uc, nil
}

// ServeConn serves one connection until it ends and closes it.
func (s *Server) ServeConn(c *net.UnixConn) {
	s.conns.Run(c, s.serve)
}

// Close closes the listeners (removing their socket files) and every
// connection, cancels the requests in the backend and waits for them.
func (s *Server) Close() error {
	return s.conns.Close()
}

func (s *Server) serve(c *net.UnixConn) {
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{
		srv:    s,
		c:      c,
		log:    s.cfg.Log,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, s.cfg.MaxInflight),
	}
	s.stats.active.Add(1)
	defer s.stats.active.Add(-1)
	ss.run()
}
