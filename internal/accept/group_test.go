package accept

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var errClosed = errors.New("test server closed")

func newGroup() *Group[net.Conn] {
	return &Group[net.Conn]{Closed: errClosed, Name: "test server"}
}

func asIs(c net.Conn) (net.Conn, error) { return c, nil }

// echo serves a connection until the peer or Close ends it.
func echo(c net.Conn) {
	defer c.Close()
	_, _ = io.Copy(c, c)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dialEcho connects to an echo server and has one byte echoed: the
// connection is being served when it returns.
func dialEcho(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("echo: %v", err)
	}
	return c
}

func TestGroupServesAndCloses(t *testing.T) {
	g := newGroup()
	l := listen(t)
	served := make(chan error, 1)
	go func() { served <- g.Serve(l, asIs, echo) }()
	var clients []net.Conn
	for range 3 {
		clients = append(clients, dialEcho(t, l.Addr().String()))
	}
	if n := g.Len(); n != 3 {
		t.Fatalf("%d live connections, want 3", n)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := g.Len(); n != 0 {
		t.Fatalf("%d connections live after Close", n)
	}
	select {
	case err := <-served:
		if err != errClosed {
			t.Fatalf("Serve = %v, want the group's Closed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a connection outlived Close")
		}
	}
	if err := g.Serve(listen(t), asIs, echo); err != errClosed {
		t.Fatalf("Serve after Close = %v", err)
	}
	a, b := net.Pipe()
	defer b.Close()
	if g.Run(a, echo) {
		t.Fatal("Run after Close served a connection")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("Run after Close left the connection open")
	}
}

func TestGroupRun(t *testing.T) {
	g := newGroup()
	a, b := net.Pipe()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		if !g.Run(a, echo) {
			t.Error("Run refused a connection")
		}
	}()
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	live, err := g.Stop()
	if err != nil || len(live) != 1 || live[0] != a {
		t.Fatalf("Stop: %v, %v; want the one connection", live, err)
	}
	b.Close() // what a draining server would wait for
	<-ran
	g.Wait()
	if live, _ := g.Stop(); len(live) != 0 {
		t.Fatalf("second Stop: %d live", len(live))
	}
}

// failing returns EMFILE from its first fails accepts.
type failing struct {
	net.Listener
	fails atomic.Int32
}

func (l *failing) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestGroupRetriesAcceptErrors(t *testing.T) {
	g := newGroup()
	heard := make(chan time.Duration, 3)
	g.Failed = func(err error, pause time.Duration) {
		if !errors.Is(err, syscall.EMFILE) {
			t.Errorf("Failed heard %v", err)
		}
		heard <- pause
	}
	l := &failing{Listener: listen(t)}
	l.fails.Store(3)
	served := make(chan error, 1)
	go func() { served <- g.Serve(l, asIs, echo) }()
	dialEcho(t, l.Addr().String())
	pauses := []time.Duration{<-heard, <-heard, <-heard}
	if pauses[0] != Min || pauses[2] != 4*Min {
		t.Fatalf("pauses %v, want %v doubling", pauses, Min)
	}
	g.Close()
	if err := <-served; err != errClosed {
		t.Fatalf("Serve = %v", err)
	}
}

func TestGroupStopCutsPauseShort(t *testing.T) {
	g := newGroup()
	l := &failing{Listener: listen(t)}
	l.fails.Store(1 << 30)
	served := make(chan error, 1)
	go func() { served <- g.Serve(l, asIs, echo) }()
	time.Sleep(200 * time.Millisecond) // into the longer pauses
	start := time.Now()
	g.Close()
	if err := <-served; err != errClosed {
		t.Fatalf("Serve = %v", err)
	}
	if d := time.Since(start); d > Max/2 {
		t.Fatalf("Serve returned %v after Close, want the pause cut short", d)
	}
}

func TestGroupListenerFailure(t *testing.T) {
	g := newGroup()
	l := listen(t)
	l.Close()
	err := g.Serve(l, asIs, echo)
	if err == errClosed || !errors.Is(err, net.ErrClosed) || err.Error()[:len("test server: accept: ")] != "test server: accept: " {
		t.Fatalf("Serve on a closed listener = %v", err)
	}
}

func TestGroupRefusedConnection(t *testing.T) {
	g := newGroup()
	l := listen(t)
	refuse := errors.New("not this one")
	served := make(chan error, 1)
	go func() {
		served <- g.Serve(l, func(net.Conn) (net.Conn, error) { return nil, refuse }, echo)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-served; err != refuse {
		t.Fatalf("Serve = %v, want accepted's error", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a refused connection was left open")
	}
	if n := g.Len(); n != 0 {
		t.Fatalf("%d live after a refusal", n)
	}
}
