package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/frame/frametest"
)

// A frame stream from either side decodes into frames whose payloads each
// parse or are rejected with ErrProtocol; nothing panics, nothing is
// allocated beyond the bounds, and what parses re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	var n Nonce
	for _, seed := range [][]byte{
		appendFrame(nil, nil, TypeHello, 1, AppendHello(nil, Hello{Min: 1, Max: 1, Nonce: n})),
		appendFrame(nil, nil, TypeChallenge, 1, AppendChallenge(nil, Challenge{Version: 1, MaxGFNs: 16})),
		appendFrame(nil, nil, TypeAuth, 2, make([]byte, TagSize)),
		appendFrame(nil, nil, TypeWelcome, 2, nil),
		appendFrame(nil, nil, TypeError, 0, AppendError(nil, fabric.ErrAuth)),
		appendFrame(nil, nil, TypeTouch, 3, AppendGFNs(nil, []fabric.GFN{1, 2, 1 << 50})),
		appendFrame(nil, nil, TypeResults, 3, AppendResults(nil, []Reason{ReasonDone, ReasonNotRAM, 77})),
		AppendHeader(nil, Header{Type: TypeTouch, ID: 1, Len: MaxPayload}),
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frametest.Decode(t, &spec, b, func(typ Type, p []byte) { checkPayload(t, typ, p) }, requestLimit, replyLimit)
	})
}

func checkPayload(t *testing.T, typ Type, p []byte) {
	t.Helper()
	rejected := func(err error) bool { return frametest.Rejected(t, typ, err) }
	switch typ {
	case TypeHello:
		v, err := ParseHello(p)
		if !rejected(err) && !bytes.Equal(AppendHello(nil, v), p) {
			t.Fatalf("hello %+v from %x", v, p)
		}
	case TypeChallenge:
		v, err := ParseChallenge(p)
		if !rejected(err) && !bytes.Equal(AppendChallenge(nil, v), p) {
			t.Fatalf("challenge %+v from %x", v, p)
		}
	case TypeAuth:
		v, err := ParseAuth(p)
		if !rejected(err) && !bytes.Equal(v[:], p) {
			t.Fatalf("auth %x from %x", v, p)
		}
	case TypeError:
		re, err := ParseError(p)
		if !rejected(err) && (re.Code == 0 || len(re.Msg) > maxErrorText) {
			t.Fatalf("error %+v from %x", re, p)
		}
	case TypeTouch:
		g, err := ParseGFNs(nil, p)
		if !rejected(err) && !bytes.Equal(AppendGFNs(nil, g), p) {
			t.Fatalf("gfns %v from %x", g, p)
		}
	case TypeResults:
		rs, err := ParseResults(p)
		if !rejected(err) && !bytes.Equal(AppendResults(nil, rs), p) {
			t.Fatalf("results %v from %x", rs, p)
		}
	}
}

// A whole server connection fed arbitrary input ends by itself (no hang),
// answers only with well-formed frames, and leaves the server serving. The
// first input byte picks how far the harness gets first: 0 nowhere (raw
// bytes from the start), 1 through a real handshake (then raw bytes), 2
// through the handshake, then records {u8 type, u16 length, payload} that
// the harness sends as correctly tagged frames (reaching the request
// decoder behind the tag check).
func FuzzServerConn(f *testing.F) {
	tc := &fakeToucher{ramEnd: 1 << 10}
	srv := newTestServer(f, tc, func(c *ServerConfig) {
		c.HandshakeTimeout, c.FrameTimeout, c.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, time.Second
	})
	record := func(typ Type, p []byte) []byte {
		b := []byte{byte(typ)}
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
		return append(b, p...)
	}
	var n Nonce
	f.Add(append([]byte{0}, appendFrame(nil, nil, TypeHello, 1, AppendHello(nil, Hello{Min: 1, Max: 1, Nonce: n}))...))
	f.Add([]byte{0, 'V', 'A', 6, 0, 0, 0, 0, 1, 0, 0, 0, 4})
	f.Add(append([]byte{1}, appendFrame(nil, nil, TypeTouch, 3, AppendGFNs(nil, []fabric.GFN{1}))...))
	f.Add(append([]byte{2}, record(TypeTouch, AppendGFNs(nil, []fabric.GFN{1, 2, 5000}))...))
	f.Add(append(append([]byte{2}, record(TypeTouch, nil)...), record(TypeTouch, []byte{0, 0, 0, 1, 0})...))
	f.Add(append([]byte{2}, record(TypeHello, AppendHello(nil, Hello{Min: 1, Max: 1}))...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		mode, in := in[0]%3, in[1:]
		a, b := net.Pipe()
		defer a.Close()
		done := make(chan struct{})
		go func() { srv.ServeConn(b, false); close(done) }()
		_ = a.SetDeadline(time.Now().Add(10 * time.Second))
		var s *rawSession
		if mode == 0 {
			s = &rawSession{c: a}
		} else {
			s = rawHandshake(t, a, testKey)
		}
		go func() {
			if mode == 2 {
				for len(in) >= 3 {
					l := min(int(binary.BigEndian.Uint16(in[1:])), len(in)-3)
					s.send(Type(in[0]), 9, in[3:3+l])
					in = in[3+l:]
				}
			} else {
				_, _ = a.Write(in)
			}
			// End the stream: the server must finish on what it got.
			time.Sleep(10 * time.Millisecond)
			_ = a.Close()
		}()
		var out []byte
		if s.br != nil {
			out, _ = io.ReadAll(s.br)
		} else {
			out, _ = io.ReadAll(a)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("server connection did not end")
		}
		r := bytes.NewReader(out)
		for r.Len() > 0 {
			h, p, err := readFrame(r, replyLimit, s.tags, nil)
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					break // cut short by the close
				}
				t.Fatalf("server sent a malformed frame: %v", err)
			}
			checkPayload(t, h.Type, p)
		}
	})
}
