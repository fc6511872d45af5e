package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// A request round-trips: every frame gets its own answer, frames outside
// RAM fail with their reason, and a list longer than one request is split.
func TestRoundTrip(t *testing.T) {
	tc := &fakeToucher{ramEnd: 1 << 20}
	srv := newTestServer(t, tc, nil)
	c, err := dialTest(t, listen(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() != VersionMax {
		t.Fatalf("version %d", c.Version())
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	gfns := make([]fabric.GFN, 0, MaxGFNsPerRequest+100)
	for i := range MaxGFNsPerRequest + 98 {
		gfns = append(gfns, fabric.GFN(i))
	}
	gfns = append(gfns, 1<<20, 1<<40)
	errs := c.MakeResident(context.Background(), gfns)
	if len(errs) != len(gfns) {
		t.Fatalf("%d results for %d gfns", len(errs), len(gfns))
	}
	for i, err := range errs {
		want := gfns[i] < 1<<20
		if want != (err == nil) || (!want && !errors.Is(err, ErrNotRAM)) {
			t.Fatalf("gfn %#x: %v", gfns[i], err)
		}
	}
	if n := tc.count(); n != len(gfns)-2 {
		t.Fatalf("%d frames touched, want %d", n, len(gfns)-2)
	}
	st := srv.Stats()
	if st.Connections != 1 || st.PagesTouched != uint64(len(gfns)-2) || st.PagesFailed != 2 || st.Requests != 2 {
		t.Fatalf("server stats %+v", st)
	}
	cs := c.Stats()
	if cs.Done != uint64(len(gfns)-2) || cs.Failed != 2 || cs.Distrusted {
		t.Fatalf("client stats %+v", cs)
	}
}

// A client with the wrong key is refused, and so is an agent with the
// wrong key; the server stays up for a client with the right one.
func TestWrongKeyRefused(t *testing.T) {
	tc := &fakeToucher{ramEnd: 100}
	srv := newTestServer(t, tc, nil)
	addr := listen(t, srv)
	bad := bytes.Repeat([]byte{1}, 32)
	_, err := dialTest(t, addr, func(c *ClientConfig) { c.Key = bad })
	if !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("wrong key: %v, want ErrAuth", err)
	}
	// The client checks the agent's proof first, so it never proves itself
	// to an agent that does not know the key: it refuses that agent.
	other := newTestServer(t, tc, func(c *ServerConfig) { c.Key = bad })
	if _, err := dialTest(t, listen(t, other), nil); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("agent with another key: %v, want ErrAuth", err)
	}
	// A client that answers the challenge wrongly is told why.
	a, b := net.Pipe()
	go srv.ServeConn(b, false)
	defer a.Close()
	_ = a.SetDeadline(time.Now().Add(5 * time.Second))
	var cn Nonce
	_, _ = a.Write(appendFrame(nil, nil, TypeHello, 1, AppendHello(nil, Hello{Min: 1, Max: 1, Nonce: cn})))
	s := &rawSession{c: a}
	s.br = bufio.NewReader(a)
	if _, err := handshakeReply(s.br, TypeChallenge, 1); err != nil {
		t.Fatal(err)
	}
	s.send(TypeAuth, 2, make([]byte, TagSize))
	if _, err := handshakeReply(s.br, TypeWelcome, 2); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("bad proof answered %v, want an auth error frame", err)
	}
	// The first client refused the agent's proof before proving itself:
	// only the bad proof counts as the agent's refusal.
	if st := srv.Stats(); st.AuthFailures != 1 {
		t.Fatalf("server counted %d auth failures, want 1", st.AuthFailures)
	}
	if _, err := dialTest(t, addr, nil); err != nil {
		t.Fatalf("right key after refusals: %v", err)
	}
	if tc.count() != 0 {
		t.Fatalf("pages touched for refused clients")
	}
}

// recorder keeps every byte a client wrote.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.out.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// A whole recorded client conversation replayed on a new connection is
// refused (the agent's nonce differs, so the recorded proof is wrong), and
// a touch frame replayed within its own connection fails its tag.
func TestReplayRefused(t *testing.T) {
	tc := &fakeToucher{ramEnd: 100}
	srv := newTestServer(t, tc, nil)
	a, b := net.Pipe()
	go srv.ServeConn(b, false)
	rec := &recorder{Conn: a}
	c, err := NewClient(context.Background(), rec, ClientConfig{Key: testKey, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if errs := c.MakeResident(context.Background(), []fabric.GFN{1, 2}); errs[0] != nil || errs[1] != nil {
		t.Fatalf("touch: %v", errs)
	}
	c.Close()
	recorded := append([]byte(nil), rec.out.Bytes()...)
	before := tc.count()

	// Across connections.
	a2, b2 := net.Pipe()
	go srv.ServeConn(b2, false)
	_ = a2.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _, _ = a2.Write(recorded) }()
	out, _ := io.ReadAll(a2)
	a2.Close()
	if !frameStreamHasError(out, fabric.ErrAuth) {
		t.Fatalf("replayed conversation answered %x, want an auth error", out)
	}

	// Within a connection: the same tagged touch frame twice.
	a3, b3 := net.Pipe()
	go srv.ServeConn(b3, false)
	defer a3.Close()
	s := rawHandshake(t, a3, testKey)
	frame := appendFrame(nil, s.tags, TypeTouch, 7, AppendGFNs(nil, []fabric.GFN{3}))
	_, _ = a3.Write(frame)
	if h, p, err := s.read(); err != nil || h.Type != TypeResults || !bytes.Equal(p, AppendResults(nil, []Reason{ReasonDone})) {
		t.Fatalf("first touch: %v %v %x", h, err, p)
	}
	_, _ = a3.Write(frame)
	h, p, err := readFrame(s.br, replyLimit, s.tags, nil)
	if err != nil || h.Type != TypeError || h.ID != 0 {
		t.Fatalf("replayed frame answered %v %v", h, err)
	}
	if re, _ := ParseError(p); re == nil || !errors.Is(re, fabric.ErrAuth) {
		t.Fatalf("replayed frame: %v, want an auth error", re)
	}
	if got := tc.count() - before; got != 1 {
		t.Fatalf("%d frames touched by replays, want only the first touch of frame 3", got)
	}
}

// frameStreamHasError reports whether an untagged frame stream from the
// server carries an error frame matching target.
func frameStreamHasError(out []byte, target error) bool {
	r := bytes.NewReader(out)
	for r.Len() > 0 {
		h, p, err := readFrame(r, replyLimit, nil, nil)
		if err != nil {
			return false
		}
		if h.Type == TypeError {
			re, err := ParseError(p)
			return err == nil && errors.Is(re, target)
		}
	}
	return false
}

// Every malformed frame, before or after the handshake, gets an error
// frame saying why and ends only its own connection.
func TestMalformedFrames(t *testing.T) {
	tc := &fakeToucher{ramEnd: 100}
	srv := newTestServer(t, tc, nil)
	addr := listen(t, srv)
	good, err := dialTest(t, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(typ Type, flags uint8, n uint32) []byte {
		return AppendHeader(nil, Header{Type: typ, Flags: flags, ID: 9, Len: n})
	}
	pre := []struct {
		name string
		in   []byte
		want error
	}{
		{"bad magic", []byte("XX\x01\x00\x00\x00\x00\x01\x00\x00\x00\x24"), fabric.ErrProtocol},
		{"unknown type", hdr(99, 0, 0), fabric.ErrProtocol},
		{"flags", hdr(TypeHello, 1, helloSize), fabric.ErrProtocol},
		{"oversized hello", hdr(TypeHello, 0, helloSize+1), fabric.ErrProtocol},
		{"huge length", hdr(TypeTouch, 0, 1<<31), fabric.ErrProtocol},
		{"touch before hello", append(hdr(TypeTouch, 0, 4), 0, 0, 0, 0), fabric.ErrProtocol},
		{"bad versions", appendFrame(nil, nil, TypeHello, 1, AppendHello(nil, Hello{Min: 2, Max: 1})), fabric.ErrProtocol},
		{"future version", appendFrame(nil, nil, TypeHello, 1, AppendHello(nil, Hello{Min: 7, Max: 9})), ErrVersion},
	}
	for _, tt := range pre {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			done := make(chan struct{})
			go func() { srv.ServeConn(b, false); close(done) }()
			_ = a.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { _, _ = a.Write(tt.in) }()
			out, _ := io.ReadAll(a)
			a.Close()
			<-done
			if !frameStreamHasError(out, tt.want) {
				t.Fatalf("answered %x, want an error frame matching %v", out, tt.want)
			}
		})
	}
	post := []struct {
		name string
		send func(s *rawSession)
		want error
	}{
		{"untagged touches", func(s *rawSession) {
			f := appendFrame(nil, nil, TypeTouch, 3, AppendGFNs(nil, []fabric.GFN{1, 2, 3}))
			_, _ = s.c.Write(append(f, f...))
		}, fabric.ErrAuth},
		{"bad tag", func(s *rawSession) {
			f := appendFrame(nil, s.tags, TypeTouch, 3, AppendGFNs(nil, []fabric.GFN{1}))
			f[len(f)-1] ^= 1
			_, _ = s.c.Write(f)
		}, fabric.ErrAuth},
		{"count mismatch", func(s *rawSession) { s.send(TypeTouch, 3, []byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}) }, fabric.ErrProtocol},
		{"too many gfns", func(s *rawSession) {
			p := AppendGFNs(nil, make([]fabric.GFN, MaxGFNsPerRequest))
			p[2] = 0x20 // 8192 claimed
			s.send(TypeTouch, 3, p)
		}, fabric.ErrProtocol},
		{"hello again", func(s *rawSession) { s.send(TypeHello, 3, AppendHello(nil, Hello{Min: 1, Max: 1})) }, fabric.ErrProtocol},
		{"auth again", func(s *rawSession) { s.send(TypeAuth, 3, make([]byte, TagSize)) }, fabric.ErrProtocol},
		{"reply type", func(s *rawSession) { s.send(TypeResults, 3, AppendResults(nil, nil)) }, fabric.ErrProtocol},
	}
	for _, tt := range post {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			done := make(chan struct{})
			go func() { srv.ServeConn(b, false); close(done) }()
			defer a.Close()
			s := rawHandshake(t, a, testKey)
			go tt.send(s)
			h, p, err := s.read()
			if err != nil || h.Type != TypeError || h.ID != 0 {
				t.Fatalf("answered %v, %v", h, err)
			}
			re, err := ParseError(p)
			if err != nil || !errors.Is(re, tt.want) {
				t.Fatalf("error frame %v (%v), want %v", re, err, tt.want)
			}
			a.Close()
			<-done
		})
	}
	if errs := good.MakeResident(context.Background(), []fabric.GFN{5}); errs[0] != nil {
		t.Fatalf("the well-behaved client lost its connection: %v", errs[0])
	}
	if st := srv.Stats(); st.ProtocolErrors < uint64(len(pre)+len(post)-2) {
		t.Fatalf("server stats %+v", st)
	}
}

// logCount is a zerolog writer counting lines that contain a text.
type logCount struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCount) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	return len(p), nil
}

func (l *logCount) count(level, text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, `"level":"`+level+`"`) && strings.Contains(s, text) {
			n++
		}
	}
	return n
}

// A silent agent costs one timeout: it is reported once, and later
// requests fail at once without asking it.
func TestSilentAgentTripsOnce(t *testing.T) {
	tc := &fakeToucher{ramEnd: 100, block: true}
	srv := newTestServer(t, tc, func(c *ServerConfig) { c.TouchTimeout = 10 * time.Second })
	var logs logCount
	c, err := dialTest(t, listen(t, srv), func(c *ClientConfig) {
		c.Timeout = 200 * time.Millisecond
		c.Log = zerolog.New(&logs)
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errs := c.MakeResident(context.Background(), []fabric.GFN{1, 2})
	if took := time.Since(start); took > 2*time.Second || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("silent agent: %v after %v", errs[0], took)
	}
	start = time.Now()
	for range 20 {
		errs = c.MakeResident(context.Background(), []fabric.GFN{1})
		if !errors.Is(errs[0], ErrAgentDown) {
			t.Fatalf("after the trip: %v, want ErrAgentDown", errs[0])
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("20 requests to a distrusted agent took %v: they must not wait", took)
	}
	st := c.Stats()
	if st.Trips != 1 || !st.Distrusted || st.Skipped != 20 || st.Timeouts != 1 {
		t.Fatalf("client stats %+v", st)
	}
	if n := logs.count("warn", "not asking this agent"); n != 1 {
		t.Fatalf("%d warnings, want 1: %q", n, logs.lines)
	}
}

// Slow answers and lying batches trip the breaker after their strikes; an
// agent that answers in time again is trusted again after RetryAfter.
func TestBreakerSlowLyingAndRetry(t *testing.T) {
	tc := &fakeToucher{ramEnd: 100, delay: 60 * time.Millisecond}
	srv := newTestServer(t, tc, nil)
	addr := listen(t, srv)
	var logs logCount
	c, err := dialTest(t, addr, func(c *ClientConfig) {
		c.SlowAfter = 30 * time.Millisecond
		c.RetryAfter = 100 * time.Millisecond
		c.Log = zerolog.New(&logs)
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if errs := c.MakeResident(context.Background(), []fabric.GFN{1}); errs[0] != nil {
			t.Fatalf("slow answer %d: %v", i, errs[0])
		}
	}
	if st := c.Stats(); !st.Distrusted || !strings.HasPrefix(st.Reason, "slow") || st.SlowAnswers != 3 {
		t.Fatalf("after 3 slow answers: %+v", st)
	}
	tc.mu.Lock()
	tc.delay = 0
	tc.mu.Unlock()
	time.Sleep(120 * time.Millisecond)
	if errs := c.MakeResident(context.Background(), []fabric.GFN{1}); errs[0] != nil {
		t.Fatalf("probe: %v", errs[0])
	}
	if st := c.Stats(); st.Distrusted {
		t.Fatalf("an agent answering in time again stays distrusted: %+v", st)
	}
	c.Audit(10, 9)
	if c.Stats().Distrusted {
		t.Fatal("one lying batch tripped the breaker")
	}
	c.Audit(10, 0)
	c.Audit(10, 9)
	c.Audit(4, 3)
	st := c.Stats()
	if !st.Distrusted || !strings.HasPrefix(st.Reason, "lying") || st.Unmoved != 21 || st.Trips != 2 {
		t.Fatalf("after two lying batches running: %+v", st)
	}
	if w, i := logs.count("warn", "not asking"), logs.count("info", "not asking"); w != 1 || i != 1 {
		t.Fatalf("%d warnings and %d infos for two trips, want 1 and 1", w, i)
	}
}

// A lost connection is redialled when the client next asks.
func TestRedialAfterLoss(t *testing.T) {
	tc := &fakeToucher{ramEnd: 100}
	srv := newTestServer(t, tc, nil)
	c, err := dialTest(t, listen(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.cc.c.Close()
	<-c.cc.done
	c.mu.Unlock()
	if errs := c.MakeResident(context.Background(), []fabric.GFN{2}); errs[0] != nil {
		t.Fatalf("after the connection was lost: %v", errs[0])
	}
	if st := srv.Stats(); st.Connections != 2 {
		t.Fatalf("%d connections, want the redial to make a second", st.Connections)
	}
}
