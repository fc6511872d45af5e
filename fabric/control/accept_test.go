package control

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// failingListener returns EMFILE from its first fails accepts, as a process
// out of descriptors does.
type failingListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestServeSurvivesAcceptErrors(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, _ := NewKeyring(map[string][]byte{"vm-a": testKey})
	srv, err := NewServer(ServerConfig{Backend: StoreBackend(st), Keys: keys, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &failingListener{Listener: inner}
	l.fails.Store(8)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c, err := Dial(context.Background(), inner.Addr().String(), "vm-a", testKey, DialOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("dial after 8 EMFILE accept errors: %v (Serve: %v)", err, drained(served))
	}
	if _, err := c.Open("vm-a", 4); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != ErrServerClosed {
			t.Fatalf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

func drained(ch chan error) error {
	select {
	case err := <-ch:
		return err
	default:
		return nil
	}
}

// Environment of the child sub-host that runs with few file descriptors.
const floodChildEnv = "VMEMTRANS_ACCEPT_FLOOD_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(floodChildEnv) != "" {
		floodChild()
	}
	os.Exit(m.Run())
}

// floodChild is the child half of TestAcceptFloodLowFDLimit: a server
// under RLIMIT_NOFILE 64 that prints its address and serves until killed.
func floodChild() {
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(2)
	}
	st, err := store.Open(os.Getenv(floodChildEnv))
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	keys, _ := NewKeyring(map[string][]byte{"vm-a": testKey})
	srv, _ := NewServer(ServerConfig{Backend: StoreBackend(st), Keys: keys, Log: zerolog.Nop()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	fmt.Println(l.Addr().String())
	err = srv.Serve(l)
	fmt.Println("serve returned:", err)
	os.Exit(3)
}

// TestAcceptFloodLowFDLimit floods a sub-host that may hold only 64 file
// descriptors with 200 idle connections from the same address as a real
// client: the server must neither exit nor lock the client out.
func TestAcceptFloodLowFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process; run without -short")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floodChildEnv+"="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatal("child printed no address")
	}
	addr := sc.Text()
	go func() {
		for sc.Scan() {
			t.Logf("child: %s", sc.Text())
		}
		exited <- cmd.Wait()
	}()
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(flood), err)
		}
		flood = append(flood, c)
	}
	time.Sleep(200 * time.Millisecond) // let accept hit the descriptor limit
	for i := range 3 {
		c, err := Dial(context.Background(), addr, "vm-a", testKey, DialOptions{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("authenticated client %d during the flood: %v", i, err)
		}
		if _, err := c.Open("vm-a", 8); err != nil {
			t.Fatalf("open during the flood: %v", err)
		}
		if s, err := c.Stats(); err != nil || s.Slots != 8 {
			t.Fatalf("stats during the flood: %+v, %v", s, err)
		}
		c.Close()
	}
	select {
	case err := <-exited:
		t.Fatalf("sub-host exited during the flood: %v", err)
	default:
	}
}
