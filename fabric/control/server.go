package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/vmemtrans/vmemtrans/internal/accept"
	"github.com/vmemtrans/vmemtrans/internal/wire"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	Backend Backend  // regions to serve (required)
	Keys    *Keyring // pre-shared keys per VM (required)
	// TLS, when set, wraps every accepted connection in a TLS server
	// (mutual TLS if it requires client certificates); the key
	// handshake still runs inside it.
	TLS *tls.Config
	// RDMA, when set, answers rdma-connect requests.
	RDMA RDMAResponder
	// AuthTimeout bounds the handshake (default 10s).
	AuthTimeout time.Duration
	// WriteTimeout bounds each reply write, so a client that stops
	// reading cannot pin a connection forever (default 60s).
	WriteTimeout time.Duration
	// BaselineLimit caps the bytes of one baseline stream (default
	// MaxBaselineBytes).
	BaselineLimit uint64
	// MaxUnauthenticated caps the connections still authenticating
	// (default 256), MaxUnauthenticatedPerSource those from one client
	// IP address (default 32). At a cap, and whenever accept runs out of
	// file descriptors, the oldest such connection is dropped for the
	// newcomer: a flood of idle connections cannot lock out clients
	// that authenticate promptly.
	MaxUnauthenticated          int
	MaxUnauthenticatedPerSource int
	Log                         zerolog.Logger
}

// Server serves the control protocol over one or more listeners.
type Server struct {
	cfg      ServerConfig
	sessions accept.Group[*session]
	counters serverCounters

	// Connections not yet authenticated, oldest first, and how many come
	// from each source address.
	mu         sync.Mutex
	pending    []*session
	pendingSrc map[*session]string
	perSrc     map[string]int
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("control server closed")

// NewServer checks cfg and returns a server ready to Serve.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("control server: no backend")
	}
	if cfg.Keys == nil {
		return nil, fmt.Errorf("control server: no keys: %w", fabric.ErrAuth)
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	if cfg.BaselineLimit == 0 || cfg.BaselineLimit > wire.MaxBaselineBytes {
		cfg.BaselineLimit = wire.MaxBaselineBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.MaxUnauthenticated <= 0 {
		cfg.MaxUnauthenticated = 256
	}
	if cfg.MaxUnauthenticatedPerSource <= 0 {
		cfg.MaxUnauthenticatedPerSource = 32
	}
	s := &Server{cfg: cfg, pendingSrc: map[*session]string{}, perSrc: map[string]int{}}
	s.sessions.Closed, s.sessions.Name, s.sessions.Failed = ErrServerClosed, "control server", s.acceptFailed
	return s, nil
}

// Serve accepts connections on l until the server is shut down (returning
// ErrServerClosed). Accept errors are logged and retried with backoff, never
// fatal: a daemon out of descriptors keeps serving once some are free.
func (s *Server) Serve(l net.Listener) error {
	return s.sessions.Serve(l, s.accepted, s.serve)
}

// acceptFailed frees a descriptor for the retry when accept ran out of
// them: the daemon outlives descriptor exhaustion.
func (s *Server) acceptFailed(err error, pause time.Duration) {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		s.shedOldestPending()
	}
	s.cfg.Log.Warn().Err(err).Dur("retried_after", pause).Msg("control: accept failed")
}

// accepted admits a connection in the accept loop, so that oldest first
// among the unauthenticated is the order of accept. One that the server
// then refuses, closed meanwhile, stays listed: nothing reads the list
// once the server is closed.
func (s *Server) accepted(c net.Conn) (*session, error) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if s.cfg.TLS != nil {
		c = tls.Server(c, s.cfg.TLS)
	}
	ss := newSession(s, c)
	s.mu.Lock()
	s.admitLocked(ss, sourceOf(c))
	s.mu.Unlock()
	return ss, nil
}

func (s *Server) serve(ss *session) {
	s.counters.connections.Add(1)
	s.counters.active.Add(1)
	defer s.counters.active.Add(-1)
	ss.run()
	s.authenticated(ss)
}

// sourceOf is the address a connection's unauthenticated cap counts under.
func sourceOf(c net.Conn) string {
	a := c.RemoteAddr()
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// admitLocked records a new unauthenticated connection, first dropping the
// oldest ones over the per-source and total caps.
func (s *Server) admitLocked(ss *session, src string) {
	for s.perSrc[src] >= s.cfg.MaxUnauthenticatedPerSource {
		for _, old := range s.pending {
			if s.pendingSrc[old] == src {
				s.dropPendingLocked(old)
				break
			}
		}
	}
	for len(s.pending) >= s.cfg.MaxUnauthenticated {
		s.dropPendingLocked(s.pending[0])
	}
	s.pending = append(s.pending, ss)
	s.pendingSrc[ss] = src
	s.perSrc[src]++
}

// dropPendingLocked hangs up on a connection that has not authenticated.
func (s *Server) dropPendingLocked(ss *session) {
	s.forgetPendingLocked(ss)
	s.cfg.Log.Debug().Str("peer", ss.conn.RemoteAddr().String()).Msg("control: unauthenticated connection dropped for a newer one")
	ss.conn.Close()
}

func (s *Server) forgetPendingLocked(ss *session) {
	src, ok := s.pendingSrc[ss]
	if !ok {
		return
	}
	delete(s.pendingSrc, ss)
	if s.perSrc[src]--; s.perSrc[src] <= 0 {
		delete(s.perSrc, src)
	}
	for i, p := range s.pending {
		if p == ss {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			break
		}
	}
}

// authenticated takes a connection off the unauthenticated list once its
// handshake is over, whatever the outcome.
func (s *Server) authenticated(ss *session) {
	s.mu.Lock()
	s.forgetPendingLocked(ss)
	s.mu.Unlock()
}

// shedOldestPending frees a descriptor when accept ran out of them.
func (s *Server) shedOldestPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		s.dropPendingLocked(s.pending[0])
	}
}

// Shutdown stops accepting, lets every connection finish the request it is
// reading and send the replies it owes, then hangs up. When ctx ends first
// the remaining connections are closed abruptly.
func (s *Server) Shutdown(ctx context.Context) error {
	live, _ := s.sessions.Stop()
	for _, ss := range live {
		ss.drain()
	}
	done := make(chan struct{})
	go func() { s.sessions.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		live, _ := s.sessions.Stop()
		for _, ss := range live {
			ss.Close()
		}
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once and waits for
// their goroutines.
func (s *Server) Close() error {
	_ = s.sessions.Close() // a listener already closed is no failure of the server
	return nil
}
