package accept

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Group is one server's listeners, live connections and their goroutines.
// Set the exported fields before the first Serve; the rest of the zero
// value is ready.
type Group[C interface {
	comparable
	io.Closer
}] struct {
	// Closed is what Serve returns once the group is stopped: the
	// server's ErrServerClosed.
	Closed error
	// Name starts the error Serve returns when a listener fails for good.
	Name string
	// Failed, when set, hears of each Accept error that is retried and of
	// the pause before the retry; it runs before the pause, so a server
	// out of descriptors can free some for the retry.
	Failed func(err error, pause time.Duration)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[C]struct{}
	stopped   bool
	done      chan struct{} // closed by Stop: cuts retry pauses short
	wg        sync.WaitGroup
}

// initLocked makes the zero value ready.
func (g *Group[C]) initLocked() {
	if g.done == nil {
		g.done = make(chan struct{})
		g.listeners = map[net.Listener]struct{}{}
		g.conns = map[C]struct{}{}
	}
}

// Serve accepts connections on l until the group is stopped (it returns
// Closed) or l fails for good. Each connection goes through accepted in
// the accept loop (wrapping it, or refusing it with an error that ends
// Serve, the connection closed), then to handle in a goroutine of its own.
// The group closes a connection only when it refuses it or at Close:
// handle closes it when it is done.
func (g *Group[C]) Serve(l net.Listener, accepted func(net.Conn) (C, error), handle func(C)) error {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return g.Closed
	}
	g.initLocked()
	g.listeners[l] = struct{}{}
	done := g.done
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, l)
		g.mu.Unlock()
	}()
	var retry Backoff
	for {
		nc, err := l.Accept()
		if err != nil {
			if g.isStopped() {
				return g.Closed
			}
			if !retry.next(err) {
				return fmt.Errorf("%s: accept: %w", g.Name, err)
			}
			if g.Failed != nil {
				g.Failed(err, retry.Delay())
			}
			retry.wait(done)
			continue
		}
		retry.Reset()
		c, err := accepted(nc)
		if err != nil {
			nc.Close()
			return err
		}
		if !g.track(c) {
			c.Close()
			return g.Closed
		}
		go func() {
			defer g.untrack(c)
			handle(c)
		}()
	}
}

// Run serves c with handle in this goroutine, tracked like an accepted
// connection. Once the group is stopped it closes c and returns false.
func (g *Group[C]) Run(c C, handle func(C)) bool {
	if !g.track(c) {
		c.Close()
		return false
	}
	defer g.untrack(c)
	handle(c)
	return true
}

func (g *Group[C]) isStopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopped
}

func (g *Group[C]) track(c C) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.initLocked()
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	return true
}

func (g *Group[C]) untrack(c C) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.wg.Done()
}

// Len is the number of live connections.
func (g *Group[C]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Stop ends serving: no connection is served from now on, retry pauses
// end and the listeners are closed (their errors joined). It returns the
// live connections, left open for the server to drain or close; calling
// it again returns those still live.
func (g *Group[C]) Stop() ([]C, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.initLocked()
	if !g.stopped {
		g.stopped = true
		close(g.done)
	}
	var errs []error
	for l := range g.listeners {
		errs = append(errs, l.Close())
	}
	live := make([]C, 0, len(g.conns))
	for c := range g.conns {
		live = append(live, c)
	}
	return live, errors.Join(errs...)
}

// Wait waits for the goroutines of every connection.
func (g *Group[C]) Wait() { g.wg.Wait() }

// Close stops the group, closes every live connection and waits for their
// goroutines; it returns the listeners' close errors.
func (g *Group[C]) Close() error {
	live, err := g.Stop()
	for _, c := range live {
		c.Close()
	}
	g.Wait()
	return err
}
