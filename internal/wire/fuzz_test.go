package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// Every decoder of peer bytes either accepts and re-encodes to the same
// bytes, or rejects with ErrProtocol; none panics.

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, Header{Type: TypeRead, ID: 7, Len: 12}))
	f.Add(AppendHeader(nil, Header{Type: TypeBaselinePing, ID: 1<<32 - 1, Len: MaxPayload}))
	f.Add([]byte("VM\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, b[:HeaderSize]) {
			t.Fatalf("header %+v re-encodes to %x, read from %x", h, got, b[:HeaderSize])
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(AppendResponse(nil, Response{VM: "vm-a"}))
	f.Add([]byte{0})
	f.Add([]byte{200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if !bytes.Equal(AppendResponse(nil, r), b) {
			t.Fatalf("response %+v does not re-encode to its input", r)
		}
	})
}

func FuzzParseOpen(f *testing.F) {
	f.Add(AppendOpen(nil, Open{VM: "vm-a", Slots: 1 << 20}))
	f.Add([]byte{3, '.', '.', '/', 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOpen(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if store.ValidVMID(o.VM) != nil || !bytes.Equal(AppendOpen(nil, o), b) {
			t.Fatalf("open %+v accepted from %x", o, b)
		}
	})
}

func FuzzParseSlots(f *testing.F) {
	f.Add(AppendSlots(nil, []uint64{0, 1, 1 << 40}))
	f.Add(AppendSlots(nil, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSlots(nil, b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(s) > MaxSlotsPerRequest || !bytes.Equal(AppendSlots(nil, s), b) {
			t.Fatalf("%d slots accepted from %d bytes", len(s), len(b))
		}
	})
}

func FuzzParseStatuses(f *testing.F) {
	f.Add(AppendStatuses(nil, []Code{CodeOK, CodeSlotRange, CodeOK}), 3)
	f.Add(AppendStatuses(nil, nil), 0)
	f.Add([]byte{0, 0, 0, 1, 99}, 1)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		if want < 0 || want > MaxSlotsPerRequest {
			return
		}
		codes, ok, err := ParseStatuses(b, want)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(codes) != want || ok > want {
			t.Fatalf("%d codes, %d ok for %d wanted", len(codes), ok, want)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	f.Add(AppendStats(nil, Stats{VM: "vm-a", Slots: 9, ResidentBytes: 4096}))
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStats(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if !bytes.Equal(AppendStats(nil, s), b) {
			t.Fatalf("stats %+v does not re-encode to its input", s)
		}
	})
}

func FuzzParseError(f *testing.F) {
	f.Add(AppendError(nil, fabric.ErrForbidden))
	f.Add([]byte{byte(codeLimit), 0, 0})
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		re, err := ParseError(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if re.Code == CodeOK || re.Code >= codeLimit || !errors.Is(re, re.Code.Err()) {
			t.Fatalf("remote error %+v accepted", re)
		}
	})
}

func FuzzParseQPInfos(f *testing.F) {
	q := QPInfo{QPN: 0x11, PSN: 0x22, RKey: 7, Addr: 1 << 40, Length: 1 << 30, LID: 3, MTU: 5}
	copy(q.GID[:], "0123456789abcdef")
	f.Add(AppendQPInfos(nil, []QPInfo{q, q}))
	f.Add(AppendQPInfos(nil, nil))
	f.Add([]byte{65})
	f.Fuzz(func(t *testing.T, b []byte) {
		qps, err := ParseQPInfos(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(qps) > MaxQPs || !bytes.Equal(AppendQPInfos(nil, qps), b) {
			t.Fatalf("%d queue pairs do not re-encode to their input", len(qps))
		}
	})
}

func FuzzParseBaseline(f *testing.F) {
	f.Add(AppendBaselineStream(nil, BaselineStream{Total: 1 << 20, Chunk: 1 << 16}))
	f.Add(AppendBaselinePing(nil, BaselinePing{Rounds: 10, Request: 32, Reply: 4096}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseBaselineStream(b); err == nil {
			if s.Total > MaxBaselineBytes || s.Chunk == 0 || s.Chunk > MaxBaselineChunk {
				t.Fatalf("stream %+v accepted", s)
			}
		} else if !errors.Is(err, fabric.ErrProtocol) {
			t.Fatalf("error %v does not wrap ErrProtocol", err)
		}
		if p, err := ParseBaselinePing(b); err == nil {
			if p.Rounds > MaxBaselineRounds || p.Request == 0 || p.Reply > MaxBaselineFrame {
				t.Fatalf("ping %+v accepted", p)
			}
		} else if !errors.Is(err, fabric.ErrProtocol) {
			t.Fatalf("error %v does not wrap ErrProtocol", err)
		}
	})
}
