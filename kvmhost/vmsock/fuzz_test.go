package vmsock

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/frame/frametest"
)

// A frame stream from either side decodes into frames whose payloads each
// parse or are rejected with ErrProtocol; nothing panics, nothing is
// allocated beyond the bounds, and what parses re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	info, _ := AppendInfo(nil, VMInfo{VM: "vm", RAMSize: 1 << 20, Layout: []fabric.PhysRange{{Start: 0, End: 1 << 20}},
		Subhosts: []Subhost{{ID: 2, Addr: "a:1", VM: "vm", Key: []byte{1}}}, QMP: "q.sock"})
	for _, seed := range [][]byte{
		hello(1, 1),
		buildFrame(TypeWelcome, 1, AppendWelcome(nil, Welcome{Version: 1, MaxGFNs: 16})),
		buildFrame(TypeError, 0, AppendError(nil, fabric.ErrForbidden)),
		buildFrame(TypeInfo, 2, info),
		buildFrame(TypeFDs, 3, []byte{numFDs}),
		buildFrame(TypeMakeResident, 4, AppendGFNs(nil, []fabric.GFN{1, 2, 1 << 50})),
		buildFrame(TypeResults, 4, AppendResults(nil, []error{nil, fabric.ErrGFNRange, nil})),
		buildFrame(TypeGetStats, 5, nil),
		buildFrame(TypeStats, 5, AppendStats(nil, []Counter{{"page_ins_total", 9}, {"remote_pages", 1 << 40}})),
		AppendHeader(nil, Header{Type: TypeResults, ID: 1, Len: MaxPayload}),
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
	case TypeWelcome:
		v, err := ParseWelcome(p)
		if !rejected(err) && !bytes.Equal(AppendWelcome(nil, v), p) {
			t.Fatalf("welcome %+v from %x", v, p)
		}
	case TypeError:
		re, err := ParseError(p)
		if !rejected(err) && (re.Code == CodeOK || len(re.Msg) > maxErrorText) {
			t.Fatalf("error %+v from %x", re, p)
		}
	case TypeInfo:
		v, err := ParseInfo(p)
		if !rejected(err) {
			back, err := AppendInfo(nil, v)
			if err != nil || !bytes.Equal(back, p) {
				t.Fatalf("info %+v re-encodes to %x (%v), read from %x", v, back, err, p)
			}
		}
	case TypeFDs:
		n, err := ParseFDs(p)
		if !rejected(err) && n != numFDs {
			t.Fatalf("fds frame of %d", n)
		}
	case TypeMakeResident:
		g, err := ParseGFNs(nil, p)
		if !rejected(err) && !bytes.Equal(AppendGFNs(nil, g), p) {
			t.Fatalf("gfns %v from %x", g, p)
		}
	case TypeStats:
		cs, err := ParseStats(p)
		if !rejected(err) && !bytes.Equal(AppendStats(nil, cs), p) {
			t.Fatalf("stats %v from %x", cs, p)
		}
	case TypeResults:
		errs, err := ParseResults(p)
		if rejected(err) {
			return
		}
		again, err := ParseResults(AppendResults(nil, errs))
		if err != nil || len(again) != len(errs) {
			t.Fatalf("results %v do not survive re-encoding: %v", errs, err)
		}
		for i := range errs {
			if CodeOf(errs[i]) != CodeOf(again[i]) {
				t.Fatalf("result %d: code %d became %d", i, CodeOf(errs[i]), CodeOf(again[i]))
			}
		}
	}
}

func TestInfoRoundTrip(t *testing.T) {
	v := VMInfo{
		VM: "vm-1", CR3: 1, CR4: 2, RAMSize: 3 << 30,
		Layout:   []fabric.PhysRange{{Start: 0, End: 0xa0000}, {Start: 0x100000, End: 2 << 30}, {Start: 4 << 30, End: 3 << 30}},
		Subhosts: []Subhost{{ID: 7, Addr: "10.0.0.1:7450", VM: "vm-1", Key: bytes.Repeat([]byte{9}, 32)}},
	}
	if _, err := AppendInfo(nil, v); !errors.Is(err, fabric.ErrProtocol) {
		t.Fatalf("an empty range was encoded: %v", err)
	}
	v.Layout[2] = fabric.PhysRange{Start: 2 << 30, End: 3 << 30}
	b, err := AppendInfo(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInfo(b)
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if len(b) > maxInfoPayload {
		t.Fatalf("info of %d bytes over the bound %d", len(b), maxInfoPayload)
	}
	// A VMM's QMP socket rides as a trailing field; frames without it
	// are byte for byte what they were.
	v.QMP = "/run/vm-1.qmp"
	withQMP, err := AppendInfo(nil, v)
	if err != nil || !bytes.Equal(withQMP[:len(b)], b) {
		t.Fatalf("qmp field changed the frame's prefix: %v", err)
	}
	if got, err = ParseInfo(withQMP); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip with qmp: %+v, %v", got, err)
	}
	if _, err := ParseInfo(append(b, 0, 0)); !errors.Is(err, fabric.ErrProtocol) {
		t.Fatalf("an empty trailing qmp path parsed: %v", err)
	}
	v.Subhosts = append(v.Subhosts, Subhost{ID: 7})
	if _, err := AppendInfo(nil, v); !errors.Is(err, fabric.ErrProtocol) {
		t.Fatalf("duplicate sub-host id encoded: %v", err)
	}
}
