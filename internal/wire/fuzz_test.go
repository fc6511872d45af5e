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

func FuzzParseRDMAParams(f *testing.F) {
	p := RDMAParams{QPs: []QP{{0x11, 0x22}, {0x12, 0x23}}, RKey: 7, Addr: 1 << 40, Len: 1 << 30, MaxRd: 16, MTU: 5}
	copy(p.GID[:], "0123456789abcdef")
	f.Add(AppendRDMAParams(nil, p))
	f.Add(AppendRDMAParams(nil, RDMAParams{}))
	f.Add([]byte{65})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseRDMAParams(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(p.QPs) > MaxQPs || !bytes.Equal(AppendRDMAParams(nil, p), b) {
			t.Fatalf("%d queue pairs do not re-encode to their input", len(p.QPs))
		}
		_ = p.Validate(true) // never panics
	})
}

func TestRDMAParamsRejects(t *testing.T) {
	good := RDMAParams{QPs: []QP{{17, 5}, {18, 6}}, MaxRd: 16, MTU: 3, RKey: 1, Addr: 4096, Len: 4096}
	enc := AppendRDMAParams(nil, good)
	if p, err := ParseRDMAParams(enc); err != nil || p.Validate(true) != nil || p.RKey != 1 || len(p.QPs) != 2 {
		t.Fatalf("good params: %+v, %v", p, err)
	}
	mixed := bytes.Clone(enc)
	mixed[1+qpEntrySize+24+3] ^= 1 // the second entry's rkey
	if _, err := ParseRDMAParams(mixed); !errors.Is(err, fabric.ErrProtocol) {
		t.Errorf("entries disagreeing on the region: %v", err)
	}
	lid := bytes.Clone(enc)
	lid[1+44] = 1
	if _, err := ParseRDMAParams(lid); !errors.Is(err, fabric.ErrProtocol) {
		t.Errorf("reserved lid set: %v", err)
	}
	client := RDMAParams{QPs: []QP{{17, 5}}, MaxRd: 16, MTU: 3}
	if client.Validate(false) != nil || !errors.Is(client.Validate(true), fabric.ErrProtocol) {
		t.Error("a client's parameters are a valid request and an invalid reply (no region)")
	}
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

func TestRDMAParamsValidate(t *testing.T) {
	good := RDMAParams{QPs: []QP{{QPN: 17, PSN: 5}}, MaxRd: 16, MTU: 3, RKey: 1, Addr: 1 << 20, Len: 8 * fabric.PageSize}
	if err := good.Validate(true); err != nil {
		t.Fatal(err)
	}
	bad := []RDMAParams{
		{MaxRd: 1, MTU: 3},
		{QPs: []QP{{QPN: 0}}, MaxRd: 1, MTU: 3},
		{QPs: []QP{{QPN: 1 << 24}}, MaxRd: 1, MTU: 3},
		{QPs: []QP{{QPN: 1}}, MaxRd: 0, MTU: 3},
		{QPs: []QP{{QPN: 1}}, MaxRd: 1, MTU: 9},
		{QPs: make([]QP, MaxQPs+1), MaxRd: 1, MTU: 3},
	}
	for i, p := range bad {
		if err := p.Validate(false); !errors.Is(err, fabric.ErrProtocol) {
			t.Errorf("bad[%d] err = %v, want ErrProtocol", i, err)
		}
	}
	for i, p := range []RDMAParams{
		{QPs: good.QPs, MaxRd: 1, MTU: 3, Addr: 4096, Len: 0},
		{QPs: good.QPs, MaxRd: 1, MTU: 3, Addr: 4097, Len: 4096},
		{QPs: good.QPs, MaxRd: 1, MTU: 3, Addr: ^uint64(0) &^ 4095, Len: 8192},
	} {
		if err := p.Validate(true); !errors.Is(err, fabric.ErrProtocol) {
			t.Errorf("bad reply[%d] err = %v, want ErrProtocol", i, err)
		}
	}
}
