package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

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
	Log           zerolog.Logger
}

// Server serves the control protocol over one or more listeners.
type Server struct {
	cfg       ServerConfig
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closed    bool
	wg        sync.WaitGroup
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
	if cfg.BaselineLimit == 0 || cfg.BaselineLimit > MaxBaselineBytes {
		cfg.BaselineLimit = MaxBaselineBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	return &Server{cfg: cfg, listeners: map[net.Listener]struct{}{}, sessions: map[*session]struct{}{}}, nil
}

// Serve accepts connections on l until the server is shut down (returning
// ErrServerClosed) or l fails.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("control server: accept: %w", err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if s.cfg.TLS != nil {
			c = tls.Server(c, s.cfg.TLS)
		}
		ss := newSession(s, c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.sessions[ss] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			ss.run()
			s.mu.Lock()
			delete(s.sessions, ss)
			s.mu.Unlock()
		}()
	}
}

// stop closes the listeners and marks the server closed; it returns the live sessions.
func (s *Server) stop() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	out := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

// Shutdown stops accepting, lets every connection finish the request it is
// reading and send the replies it owes, then hangs up. When ctx ends first
// the remaining connections are closed abruptly.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, ss := range s.stop() {
		ss.drain()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, ss := range s.stop() {
			ss.conn.Close()
		}
		<-done
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once and waits for
// their goroutines.
func (s *Server) Close() error {
	for _, ss := range s.stop() {
		ss.conn.Close()
	}
	s.wg.Wait()
	return nil
}
