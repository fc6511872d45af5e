package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Type: TypeReadReply, ID: 0xdeadbeef, Len: MaxPayload}
	b := AppendHeader(nil, h)
	if len(b) != HeaderSize {
		t.Fatalf("header is %d bytes, want %d", len(b), HeaderSize)
	}
	got, err := ParseHeader(b)
	if err != nil || got != h {
		t.Fatalf("ParseHeader = %+v, %v; want %+v", got, err, h)
	}
	bad := map[string]func([]byte){
		"magic":    func(b []byte) { b[0] = 'X' },
		"version":  func(b []byte) { b[2] = 9 },
		"type":     func(b []byte) { b[3] = 0 },
		"type-max": func(b []byte) { b[3] = byte(typeLimit) },
		"flags":    func(b []byte) { b[5] = 1 },
		"reserved": func(b []byte) { b[7] = 1 },
		"length":   func(b []byte) { b[12] = 0xff },
	}
	for name, mutate := range bad {
		c := bytes.Clone(b)
		mutate(c)
		if _, err := ParseHeader(c); !errors.Is(err, fabric.ErrProtocol) {
			t.Errorf("%s: ParseHeader error %v, want ErrProtocol", name, err)
		}
	}
}

func TestCodesMapToSentinels(t *testing.T) {
	for c := CodeSlotRange; c < codeLimit; c++ {
		err := c.Err()
		if CodeOf(err) != c {
			t.Errorf("code %d -> %v -> %d", c, err, CodeOf(err))
		}
		re, perr := ParseError(AppendError(nil, err))
		if perr != nil || !errors.Is(re, err) {
			t.Errorf("error frame of %v decodes to %v, %v", err, re, perr)
		}
	}
	if CodeOf(errors.New("other")) != CodeServer || CodeOf(nil) != CodeOK {
		t.Error("unknown errors must map to CodeServer and nil to CodeOK")
	}
}
