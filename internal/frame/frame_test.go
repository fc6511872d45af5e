package frame

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

type typ uint8

var spec = Spec[typ]{Magic: [2]byte{'T', 'X'}, Prefix: "test ", Names: []string{1: "ping", 2: "pong"}, MaxPayload: 64}

func limit(t typ) uint32 {
	if t == 1 {
		return 16
	}
	return spec.MaxPayload
}

func TestHeaderWireForm(t *testing.T) {
	h := Header[typ]{Type: 2, ID: 0x01020304, Len: 0x20}
	b := spec.AppendHeader([]byte{0xee}, h)
	want := []byte{0xee, 'T', 'X', 2, 0, 1, 2, 3, 4, 0, 0, 0, 0x20}
	if !bytes.Equal(b, want) {
		t.Fatalf("header %+v encodes to %x, want %x", h, b, want)
	}
	got, err := spec.ParseHeader(b[1:])
	if err != nil || got != h {
		t.Fatalf("header %x parses to %+v, %v", b[1:], got, err)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	good := spec.AppendHeader(nil, Header[typ]{Type: 1, Len: 3})
	with := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
		text string
	}{
		{"short", good[:11], ErrShort, "test frame header: 11 bytes: protocol violation"},
		{"magic", with(1, 'Y'), ErrMagic, "test frame header: bad magic 0x5459: protocol violation"},
		{"type 0", with(2, 0), ErrType, "test frame header: unknown type(0): protocol violation"},
		{"type past the last", with(2, 3), ErrType, "test frame header: unknown type(3): protocol violation"},
		{"flags", with(3, 0x80), ErrFlags, "test frame header: reserved flags 0x80: protocol violation"},
		{"length", with(11, 65), ErrTooLong, "test frame header: payload 65 over 64: protocol violation"},
	} {
		h, err := spec.ParseHeader(tc.b)
		if !errors.Is(err, tc.want) || !errors.Is(err, fabric.ErrProtocol) || h != (Header[typ]{}) {
			t.Errorf("%s: %+v, %v; want %v wrapping fabric.ErrProtocol", tc.name, h, err, tc.want)
			continue
		}
		if err.Error() != tc.text {
			t.Errorf("%s: error %q, want %q", tc.name, err, tc.text)
		}
	}
	if errors.Is(ErrMagic, ErrType) {
		t.Fatal("the sentinels must differ")
	}
}

func TestRead(t *testing.T) {
	var stream []byte
	stream = spec.AppendFrame(stream, 1, 7, []byte("abc"))
	stream = append(stream, "tag!"...)
	stream = spec.AppendFrame(stream, 2, 8, nil)
	stream = append(stream, "TAG!"...)
	r := bytes.NewReader(stream)
	buf := make([]byte, 0, 64)
	h, p, err := spec.Read(r, limit, 4, buf)
	if err != nil || h != (Header[typ]{Type: 1, ID: 7, Len: 3}) || string(p) != "abctag!" || &p[0] != &buf[:1][0] {
		t.Fatalf("first frame: %+v %q %v (buffer reused: %v)", h, p, err, len(p) > 0 && &p[0] == &buf[:1][0])
	}
	h, p, err = spec.Read(r, limit, 4, nil)
	if err != nil || h.Type != 2 || string(p) != "TAG!" {
		t.Fatalf("second frame: %+v %q %v", h, p, err)
	}
	if _, _, err = spec.Read(r, limit, 4, nil); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if _, _, err = spec.Read(bytes.NewReader(stream[:14]), limit, 4, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut payload: %v, want io.ErrUnexpectedEOF", err)
	}
	over := spec.AppendFrame(nil, 1, 9, make([]byte, 17))
	h, _, err = spec.Read(bytes.NewReader(over), limit, 0, nil)
	if !errors.Is(err, ErrTooLong) || !errors.Is(err, fabric.ErrProtocol) || h.Len != 17 {
		t.Fatalf("payload over the type's bound: %+v, %v", h, err)
	}
	if want := "test ping frame: payload 17 over 16: protocol violation"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestName(t *testing.T) {
	for v, want := range map[typ]string{0: "type(0)", 1: "ping", 2: "pong", 3: "type(3)", 255: "type(255)"} {
		if got := spec.Name(v); got != want {
			t.Errorf("Name(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestVersions(t *testing.T) {
	errNone := errors.New("no common version")
	_, err := Versions{Min: 5, Max: 9}.Negotiate(Versions{Min: 1, Max: 2}, "tester", errNone)
	if want := "client speaks versions 5..9, tester 1..2: no common version"; err == nil || err.Error() != want {
		t.Fatalf("refusal %v, want %q", err, want)
	}
	ours := Versions{Min: 2, Max: 4}
	for _, tc := range []struct {
		peer  Versions
		valid bool
		v     uint16
		ok    bool
	}{
		{Versions{1, 1}, true, 1, false},
		{Versions{1, 2}, true, 2, true},
		{Versions{3, 9}, true, 4, true},
		{Versions{5, 9}, true, 4, false},
		{Versions{0, 3}, false, 3, true},
		{Versions{3, 2}, false, 2, false},
	} {
		if tc.peer.Valid() != tc.valid {
			t.Errorf("%+v: valid %v, want %v", tc.peer, !tc.valid, tc.valid)
		}
		v, err := tc.peer.Negotiate(ours, "tester", errNone)
		if (err == nil) != tc.ok || (tc.ok && v != tc.v) || (!tc.ok && (v != 0 || !errors.Is(err, errNone))) {
			t.Errorf("%+v negotiates %d, %v; want %d, ok %v", tc.peer, v, err, tc.v, tc.ok)
		}
	}
}

func TestSentinelsReadAsProtocolErrors(t *testing.T) {
	for _, err := range []error{ErrShort, ErrMagic, ErrType, ErrFlags, ErrTooLong} {
		if !errors.Is(err, fabric.ErrProtocol) || !strings.Contains(err.Error(), fabric.ErrProtocol.Error()) {
			t.Errorf("%v does not read as fabric.ErrProtocol", err)
		}
	}
}
