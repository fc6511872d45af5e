package handoff

import (
	"errors"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	m := Message{Addr: 0x7f0000000000, Length: 256 << 20, Offset: 0}
	got, err := ParseMessage(AppendMessage(nil, m))
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"short":       AppendMessage(nil, m)[:31],
		"magic":       append([]byte("XXXX"), AppendMessage(nil, m)[4:]...),
		"empty":       AppendMessage(nil, Message{Addr: 0x1000}),
		"unaligned":   AppendMessage(nil, Message{Addr: 0x1001, Length: 0x1000}),
		"odd offset":  AppendMessage(nil, Message{Addr: 0x1000, Length: 0x1000, Offset: 12}),
		"wraps":       AppendMessage(nil, Message{Addr: 1 << 63, Length: 1 << 63}),
		"offset wrap": AppendMessage(nil, Message{Addr: 0x1000, Length: 0x2000, Offset: ^uint64(0xfff)}),
	} {
		if _, err := ParseMessage(b); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: parsed (%v)", name, err)
		}
	}
	v2 := AppendMessage(nil, m)
	v2[4] = 2
	if _, err := ParseMessage(v2); !errors.Is(err, ErrMessage) {
		t.Errorf("version 2 parsed: %v", err)
	}
}

// A message either parses into a page-aligned, non-wrapping range that
// re-encodes to the same bytes, or is rejected with ErrMessage.
func FuzzParseMessage(f *testing.F) {
	f.Add(AppendMessage(nil, Message{Addr: 0x7f0000000000, Length: 1 << 30}))
	f.Add([]byte("VMTH"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatalf("error without ErrMessage: %v", err)
			}
			return
		}
		if m.Length == 0 || m.Addr%pageSize != 0 || m.Addr+m.Length < m.Addr {
			t.Fatalf("bad range accepted: %+v", m)
		}
		if string(AppendMessage(nil, m)) != string(b) {
			t.Fatalf("%+v re-encodes differently", m)
		}
	})
}
