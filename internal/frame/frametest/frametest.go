package frametest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/frame"
)

// Decode reads the frames of b with s, once for each limit (the payload
// bounds of one direction), up to the first error, and hands each
// payload to check.
func Decode[T ~uint8](t *testing.T, s *frame.Spec[T], b []byte, check func(T, []byte), limits ...func(T) uint32) {
	t.Helper()
	for _, limit := range limits {
		r := bytes.NewReader(b)
		for {
			start := len(b) - r.Len()
			h, p, err := s.Read(r, limit, 0, nil)
			if err != nil {
				if h.Len > s.MaxPayload {
					t.Fatalf("header of %d bytes accepted", h.Len)
				}
				break
			}
			if uint32(len(p)) != h.Len || h.Len > limit(h.Type) {
				t.Fatalf("%s frame of %d bytes, limit %d", s.Name(h.Type), len(p), limit(h.Type))
			}
			if got := s.AppendHeader(nil, h); !bytes.Equal(got, b[start:start+frame.HeaderSize]) {
				t.Fatalf("header %+v re-encodes to %x", h, got)
			}
			check(h.Type, p)
		}
	}
}

// Rejected reports whether a parser of what rejected its payload, failing
// t when the error does not wrap fabric.ErrProtocol.
func Rejected(t *testing.T, what fmt.Stringer, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, fabric.ErrProtocol) {
		t.Fatalf("%v: error %v does not wrap ErrProtocol", what, err)
	}
	return err != nil
}
