package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// FuzzRead checks, on any byte stream, that a frame Read accepts has a
// header that re-encodes to the bytes it was read from and a payload within
// its bounds, and that every rejection is a protocol error or a short read.
func FuzzRead(f *testing.F) {
	f.Add(spec.AppendFrame(nil, 1, 1, []byte("hi")))
	f.Add(append(spec.AppendFrame(nil, 2, 0, make([]byte, 64)), spec.AppendFrame(nil, 1, 3, nil)...))
	f.Add(spec.AppendHeader(nil, Header[typ]{Type: 1, Len: 17}))
	f.Add([]byte("TX\x03\x00\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, trailer := range []int{0, 4} {
			r := bytes.NewReader(b)
			for {
				start := len(b) - r.Len()
				h, p, err := spec.Read(r, limit, trailer, nil)
				if err != nil {
					short := err == io.EOF || err == io.ErrUnexpectedEOF
					if !short && (len(b)-start < HeaderSize || !errors.Is(err, fabric.ErrProtocol)) {
						t.Fatalf("error %v is neither a short read nor a protocol error", err)
					}
					break
				}
				if h.Len > limit(h.Type) || len(p) != int(h.Len)+trailer {
					t.Fatalf("%+v with %d bytes accepted", h, len(p))
				}
				if got := spec.AppendHeader(nil, h); !bytes.Equal(got, b[start:start+HeaderSize]) {
					t.Fatalf("header %+v re-encodes to %x, read from %x", h, got, b[start:start+HeaderSize])
				}
			}
		}
	})
}
