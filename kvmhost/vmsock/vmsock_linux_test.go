//go:build linux

package vmsock

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func dial(t testing.TB, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestInfoAndFiles(t *testing.T) {
	b := newFakeBackend(t)
	_, path := startServer(t, b, nil)
	c := dial(t, path)
	if c.Version() != VersionMax {
		t.Errorf("version %d, want %d", c.Version(), VersionMax)
	}
	if got := c.Info(); !reflect.DeepEqual(got, b.info) {
		t.Fatalf("info\n got %+v\nwant %+v", got, b.info)
	}

	ram, err := c.RAMFile()
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	assertReadOnly(t, ram)
	page := make([]byte, fabric.PageSize)
	for _, i := range []int{0, 17, ramPages - 1} {
		if _, err := ram.ReadAt(page, int64(i)*fabric.PageSize); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(page, bytes.Repeat([]byte{byte(i + 1)}, fabric.PageSize)) {
			t.Fatalf("ram page %d through the passed descriptor differs", i)
		}
	}

	lmf, err := c.LocationMapFile()
	if err != nil {
		t.Fatal(err)
	}
	defer lmf.Close()
	assertReadOnly(t, lmf)
	view, err := fabric.OpenLocationMapReadOnly(int(lmf.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	for g := range fabric.GFN(ramPages) {
		if view.Load(g) != b.locmap.Load(g) {
			t.Fatalf("gfn %d: word %v through the socket, %v in the runtime", g, view.Load(g), b.locmap.Load(g))
		}
	}
	// The view follows the runtime's later stores: it is the same memfd.
	w := fabric.LocalWord(9)
	if err := b.locmap.Store(5, w); err != nil {
		t.Fatal(err)
	}
	if view.Load(5) != w {
		t.Fatalf("view does not see the runtime's store: %v", view.Load(5))
	}
}

// assertReadOnly checks that f is open O_RDONLY and cannot be mapped writable.
func assertReadOnly(t *testing.T, f *os.File) {
	t.Helper()
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_ACCMODE != unix.O_RDONLY {
		t.Fatalf("%s: access mode %#x, want O_RDONLY", f.Name(), fl&unix.O_ACCMODE)
	}
	if m, err := unix.Mmap(int(f.Fd()), 0, fabric.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(m)
		t.Fatalf("%s: mapped writable", f.Name())
	}
	if fl&unix.O_CLOEXEC == 0 {
		if fdfl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); fdfl&unix.FD_CLOEXEC == 0 {
			t.Fatalf("%s: received without close-on-exec", f.Name())
		}
	}
}

func TestMakeResidentPerGFN(t *testing.T) {
	b := newFakeBackend(t)
	_, path := startServer(t, b, nil)
	c := dial(t, path)
	gfns := []fabric.GFN{3, ramPages + 1, 7, 1 << 40}
	errs := c.MakeResident(context.Background(), gfns)
	if len(errs) != len(gfns) {
		t.Fatalf("%d results for %d gfns", len(errs), len(gfns))
	}
	for i, g := range gfns {
		switch {
		case g < ramPages && errs[i] != nil:
			t.Errorf("gfn %d: %v, want done", g, errs[i])
		case g >= ramPages && !errors.Is(errs[i], fabric.ErrGFNRange):
			t.Errorf("gfn %#x: %v, want ErrGFNRange", uint64(g), errs[i])
		}
	}
	var re *RemoteError
	if !errors.As(errs[1], &re) || !bytes.Contains([]byte(re.Msg), []byte("beyond")) {
		t.Errorf("failed gfn carries %v, want the runtime's message", errs[1])
	}
	if got := c.MakeResident(context.Background(), nil); len(got) != 0 {
		t.Errorf("empty request: %v", got)
	}
}

func TestMakeResidentSplitsLongLists(t *testing.T) {
	b := newFakeBackend(t)
	srv, path := startServer(t, b, nil)
	c := dial(t, path)
	gfns := make([]fabric.GFN, 2*MaxGFNsPerRequest+5)
	for i := range gfns {
		gfns[i] = fabric.GFN(i % (2 * ramPages)) // half out of range
	}
	errs := c.MakeResident(context.Background(), gfns)
	for i, g := range gfns {
		if (g < ramPages) != (errs[i] == nil) {
			t.Fatalf("gfn %d (index %d): %v", g, i, errs[i])
		}
	}
	reqs, _ := b.seen()
	var total int
	for _, r := range reqs {
		if len(r) > MaxGFNsPerRequest {
			t.Errorf("request of %d gfns reached the backend", len(r))
		}
		total += len(r)
	}
	if len(reqs) != 3 || total != len(gfns) {
		t.Errorf("%d requests of %d gfns in all, want 3 of %d", len(reqs), total, len(gfns))
	}
	var failed uint64
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	st := srv.Stats()
	if st.ResidentRequests != 3 || st.ResidentGFNs+st.FailedGFNs != uint64(len(gfns)) || st.FailedGFNs != failed {
		t.Errorf("stats %+v", st)
	}
}

func TestConcurrentClients(t *testing.T) {
	b := newFakeBackend(t)
	_, path := startServer(t, b, nil)
	c := dial(t, path)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				g := fabric.GFN((w*50 + i) % (2 * ramPages))
				errs := c.MakeResident(context.Background(), []fabric.GFN{g, g})
				for _, err := range errs {
					if (g < ramPages) != (err == nil) {
						t.Errorf("gfn %d: %v", g, err)
						return
					}
				}
				if i%10 == 0 {
					f, err := c.RAMFile()
					if err != nil {
						t.Error(err)
						return
					}
					f.Close()
				}
			}
		})
	}
	wg.Wait()
}

func TestMakeResidentHonoursContext(t *testing.T) {
	b := newFakeBackend(t)
	b.block = true
	srv, path := startServer(t, b, nil)
	c := dial(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	for _, err := range c.MakeResident(ctx, []fabric.GFN{1, 2}) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
	}
	// The runtime still has the request; closing the client cancels it there.
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, canceled := b.seen(); canceled == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backend request not cancelled after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for srv.Stats().Active != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if a := srv.Stats().Active; a != 0 {
		t.Fatalf("%d connections still active", a)
	}
}

func TestServerCloseFailsPending(t *testing.T) {
	b := newFakeBackend(t)
	b.block = true
	srv, path := startServer(t, b, nil)
	c := dial(t, path)
	res := make(chan []error, 1)
	go func() { res <- c.MakeResident(context.Background(), []fabric.GFN{1}) }()
	for {
		if reqs, _ := b.seen(); len(reqs) == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	srv.Close()
	errs := <-res
	if !errors.Is(errs[0], fabric.ErrPeer) && !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("after server close: %v, want ErrPeer or the cancellation", errs[0])
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	if errs := c.MakeResident(context.Background(), []fabric.GFN{1}); !errors.Is(errs[0], fabric.ErrPeer) {
		t.Fatalf("on a dead connection: %v, want ErrPeer", errs[0])
	}
}

// readServerFrames reads frames until the server hangs up.
func readServerFrames(t *testing.T, c net.Conn) []struct {
	h Header
	p []byte
} {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []struct {
		h Header
		p []byte
	}
	for {
		h, p, err := readFrame(c, replyLimit, nil)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading server frames: %v", err)
		}
		out = append(out, struct {
			h Header
			p []byte
		}{h, p})
	}
}

// closingError checks that the last frame is an id-0 error of code want.
func closingError(t *testing.T, frames []struct {
	h Header
	p []byte
}, want Code) *RemoteError {
	t.Helper()
	if len(frames) == 0 {
		t.Fatal("server hung up without saying why")
	}
	last := frames[len(frames)-1]
	if last.h.Type != TypeError || last.h.ID != 0 {
		t.Fatalf("last frame %v id %d, want a closing error", last.h.Type, last.h.ID)
	}
	re, err := ParseError(last.p)
	if err != nil {
		t.Fatal(err)
	}
	if re.Code != want {
		t.Fatalf("closing error %q code %d, want %d", re.Msg, re.Code, want)
	}
	return re
}

func hello(min, max uint16) []byte {
	return buildFrame(TypeHello, 1, AppendHello(nil, Hello{Min: min, Max: max}))
}

func TestMalformedFrameClosesOnlyThatClient(t *testing.T) {
	b := newFakeBackend(t)
	srv, path := startServer(t, b, nil)
	good := dial(t, path)
	cases := map[string][]byte{
		"garbage":         []byte("GET / HTTP/1.1\r\n\r\n"),
		"no hello":        buildFrame(TypeGetInfo, 1, nil),
		"hello twice":     append(hello(1, 1), hello(1, 1)...),
		"oversized":       append(hello(1, 1), AppendHeader(nil, Header{Type: TypeMakeResident, ID: 2, Len: MaxPayload})...),
		"over type limit": append(hello(1, 1), AppendHeader(nil, Header{Type: TypeGetInfo, ID: 2, Len: 1})...),
		"reply type":      append(hello(1, 1), buildFrame(TypeResults, 2, AppendResults(nil, nil))...),
		"bad gfn count":   append(hello(1, 1), buildFrame(TypeMakeResident, 2, []byte{0, 0, 0, 2, 1, 2, 3})...),
		"too many gfns":   append(hello(1, 1), buildFrame(TypeMakeResident, 2, AppendGFNs(nil, make([]fabric.GFN, MaxGFNsPerRequest+1)))...),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			c := rawConn(t, path)
			if _, err := c.Write(in); err != nil {
				t.Fatal(err)
			}
			closingError(t, readServerFrames(t, c), CodeProtocol)
		})
	}
	if errs := good.MakeResident(context.Background(), []fabric.GFN{1}); errs[0] != nil {
		t.Fatalf("the well-behaved client suffered: %v", errs[0])
	}
	if st := srv.Stats(); st.ProtocolErrors != uint64(len(cases)) {
		t.Errorf("%d protocol errors counted, want %d", st.ProtocolErrors, len(cases))
	}
}

func TestVersionNegotiation(t *testing.T) {
	_, path := startServer(t, newFakeBackend(t), nil)
	c := rawConn(t, path)
	c.Write(hello(1, 7))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, p, err := readFrame(c, replyLimit, nil)
	if err != nil || h.Type != TypeWelcome {
		t.Fatalf("hello 1..7: %v %v", h.Type, err)
	}
	if w, err := ParseWelcome(p); err != nil || w.Version != VersionMax || w.MaxGFNs != MaxGFNsPerRequest {
		t.Fatalf("welcome %+v %v", w, err)
	}

	c = rawConn(t, path)
	c.Write(hello(VersionMax+1, VersionMax+3))
	re := closingError(t, readServerFrames(t, c), CodeVersion)
	if !errors.Is(re, ErrVersion) {
		t.Fatalf("%v does not match ErrVersion", re)
	}
}

func TestDeadlines(t *testing.T) {
	_, path := startServer(t, newFakeBackend(t), func(cfg *ServerConfig) {
		cfg.HandshakeTimeout = 100 * time.Millisecond
		cfg.FrameTimeout = 100 * time.Millisecond
		cfg.IdleTimeout = 300 * time.Millisecond
	})
	for name, in := range map[string][]byte{
		"silent":     nil,
		"half hello": hello(1, 1)[:5],
		"half frame": append(hello(1, 1), buildFrame(TypeMakeResident, 2, AppendGFNs(nil, []fabric.GFN{1}))[:14]...),
		"idle":       hello(1, 1),
	} {
		t.Run(name, func(t *testing.T) {
			c := rawConn(t, path)
			c.Write(in)
			start := time.Now()
			closingError(t, readServerFrames(t, c), CodeTimeout)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
}

func TestListen(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/rt.sock"
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	if _, err := Listen(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen on a live socket: %v, want ErrInUse", err)
	}
	// A crashed runtime leaves its socket: the next one replaces it.
	l.UnixListener.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket: %v", err)
	}
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("Listen damaged a regular file")
	}
}

func TestDialErrors(t *testing.T) {
	_, err := Dial(t.TempDir() + "/none.sock")
	if !errors.Is(err, fabric.ErrPeer) || !bytes.Contains([]byte(err.Error()), []byte("mainhost")) {
		t.Fatalf("dial of a missing socket: %v", err)
	}
}

func TestAuthorizePeer(t *testing.T) {
	for _, tc := range []struct {
		peer PeerCred
		self uint32
		ok   bool
	}{
		{PeerCred{PID: 10, UID: 1000}, 1000, true},
		{PeerCred{PID: 10, UID: 0}, 1000, true},
		{PeerCred{PID: 10, UID: 0}, 0, true},
		{PeerCred{PID: 10, UID: 1001, GID: 1000}, 1000, false},
		{PeerCred{PID: 10, UID: 1000}, 0, false},
		{PeerCred{PID: 10, UID: 65534}, 0, false},
	} {
		err := authorizePeer(tc.peer, tc.self)
		if (err == nil) != tc.ok {
			t.Errorf("peer %+v, server uid %d: %v", tc.peer, tc.self, err)
		}
		if err != nil && (!errors.Is(err, fabric.ErrForbidden) || CodeOf(err) != CodeForbidden) {
			t.Errorf("refusal %v does not carry ErrForbidden", err)
		}
	}
}

func TestCodes(t *testing.T) {
	for c := CodeProtocol; c < codeLimit; c++ {
		if got := CodeOf(c.Err()); got != c {
			t.Errorf("code %d -> %v -> %d", c, c.Err(), got)
		}
	}
	if CodeOf(errors.New("x")) != CodeRuntime || Code(200).Err() != ErrRuntime {
		t.Error("unknown errors and codes must map to the runtime error")
	}
}

func TestListenLongPath(t *testing.T) {
	dir := t.TempDir()
	name := strings.Repeat("s", maxSocketPath-len(dir)-3) // fits, but the temporary name would not
	path := filepath.Join(dir, name)
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v: want mode 0600", fi, err)
	}
}
