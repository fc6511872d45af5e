package agent

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

// fakeToucher records the frames it is asked for; frames at or above
// ramEnd fail as not RAM; block makes it wait for ctx (a silent agent),
// delay makes it slow.
type fakeToucher struct {
	mu      sync.Mutex
	touched []fabric.GFN
	ramEnd  fabric.GFN
	block   bool
	delay   time.Duration
}

func (f *fakeToucher) Touch(ctx context.Context, gfns []fabric.GFN, errs []error) {
	if f.block {
		<-ctx.Done()
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, g := range gfns {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if g >= f.ramEnd {
			errs[i] = ErrNotRAM
			continue
		}
		f.touched = append(f.touched, g)
	}
}

func (f *fakeToucher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.touched)
}

func newTestServer(t testing.TB, tc PageToucher, mod func(*ServerConfig)) *Server {
	t.Helper()
	cfg := ServerConfig{Key: testKey, Toucher: tc, Log: zerolog.Nop(),
		HandshakeTimeout: 2 * time.Second, FrameTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// listen serves s on a unix socket in a temporary directory and returns its address.
func listen(t testing.TB, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	return "unix:" + path
}

func dialTest(t testing.TB, addr string, mod func(*ClientConfig)) (*Client, error) {
	t.Helper()
	cfg := ClientConfig{Key: testKey, Log: zerolog.Nop(), Timeout: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, cfg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// rawSession is a hand-driven client connection: the test writes frames
// (tagged or not) itself.
type rawSession struct {
	c    net.Conn
	br   *bufio.Reader
	tags *tagger
}

// rawHandshake authenticates on c with key by hand and returns the session.
func rawHandshake(t testing.TB, c net.Conn, key []byte) *rawSession {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cn, _ := newNonce()
	s := &rawSession{c: c, br: bufio.NewReader(c)}
	s.send(TypeHello, 1, AppendHello(nil, Hello{Min: 1, Max: 1, Nonce: cn}))
	p, err := handshakeReply(s.br, TypeChallenge, 1)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ParseChallenge(p)
	if err != nil {
		t.Fatal(err)
	}
	proof := clientProof(key, ch.Version, &cn, &ch.Nonce)
	s.send(TypeAuth, 2, proof[:])
	if _, err := handshakeReply(s.br, TypeWelcome, 2); err != nil {
		t.Fatal(err)
	}
	s.tags = newTagger(key, &cn, &ch.Nonce, false)
	return s
}

func (s *rawSession) send(t Type, id uint32, payload []byte) {
	_, _ = s.c.Write(appendFrame(nil, s.tags, t, id, payload))
}

func (s *rawSession) read() (Header, []byte, error) {
	return readFrame(s.br, replyLimit, s.tags, nil)
}

func writeFile(path, text string, mode uint32) error {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, os.FileMode(mode))
}
