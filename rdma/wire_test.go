package rdma

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

func TestQPInfosRoundTrip(t *testing.T) {
	p := ConnParams{GID: [16]byte{10: 0xff, 11: 0xff, 12: 192, 15: 1}, QPs: []QP{{17, 5}, {18, 0xffffff}},
		MaxRd: 128, MTU: 3, RKey: 0x1234, Addr: 1 << 30, Len: 64 * fabric.PageSize}
	enc := wire.AppendQPInfos(nil, ToQPInfos(p))
	qs, err := wire.ParseQPInfos(enc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromQPInfos(qs, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip = %+v, want %+v", got, p)
	}
}

func TestFromQPInfosRejects(t *testing.T) {
	good := ToQPInfos(ConnParams{QPs: []QP{{17, 5}, {18, 6}}, MaxRd: 16, MTU: 3, RKey: 1, Addr: 4096, Len: 4096})
	if _, err := FromQPInfos(good, true); err != nil {
		t.Fatal(err)
	}
	if _, err := FromQPInfos(nil, false); !errors.Is(err, fabric.ErrProtocol) {
		t.Errorf("empty: %v", err)
	}
	mixed := append([]wire.QPInfo(nil), good...)
	mixed[1].RKey = 2
	if _, err := FromQPInfos(mixed, true); !errors.Is(err, fabric.ErrProtocol) {
		t.Errorf("mixed rkeys: %v", err)
	}
	client := ToQPInfos(ConnParams{QPs: []QP{{17, 5}}, MaxRd: 16, MTU: 3})
	if _, err := FromQPInfos(client, false); err != nil {
		t.Errorf("client request: %v", err)
	}
	if _, err := FromQPInfos(client, true); !errors.Is(err, fabric.ErrProtocol) {
		t.Errorf("reply without a region: %v", err)
	}
}

// FuzzFromQPInfos feeds arbitrary rdma-connect payloads through the control
// decoder and ours: no panic, and whatever is accepted is valid.
func FuzzFromQPInfos(f *testing.F) {
	f.Add(wire.AppendQPInfos(nil, ToQPInfos(ConnParams{QPs: []QP{{17, 5}}, MaxRd: 16, MTU: 3, RKey: 1, Addr: 4096, Len: 4096})), true)
	f.Add(wire.AppendQPInfos(nil, ToQPInfos(ConnParams{QPs: []QP{{1, 2}, {3, 4}}, MaxRd: 1, MTU: 5})), false)
	f.Add([]byte{0}, false)
	f.Fuzz(func(t *testing.T, b []byte, reply bool) {
		qs, err := wire.ParseQPInfos(b)
		if err != nil {
			return
		}
		p, err := FromQPInfos(qs, reply)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error without ErrProtocol: %v", err)
			}
			return
		}
		if err := p.Validate(reply); err != nil {
			t.Fatalf("accepted invalid params: %v", err)
		}
	})
}
