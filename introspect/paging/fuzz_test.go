package paging_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// refWalk is a one-address, unbatched walk written straight from the SDM, to
// check the batched walker against.
func refWalk(mem []byte, cr3, va uint64, five bool) (uint64, bool) {
	shifts := []uint{39, 30, 21, 12}
	if five {
		shifts = append([]uint{48}, shifts...)
	}
	table := cr3 & 0x000ffffffffff000
	for _, s := range shifts {
		pa := table + (va>>s&511)*8
		if pa+8 > uint64(len(mem)) || pa+8 < pa {
			return 0, false
		}
		e := binary.LittleEndian.Uint64(mem[pa:])
		if e&1 == 0 {
			return 0, false
		}
		if s == 12 || ((s == 30 || s == 21) && e&0x80 != 0) {
			mask := uint64(0x000fffffffffffff) &^ (1<<s - 1)
			return e&mask | va&(1<<s-1), true
		}
		table = e & 0x000ffffffffff000
	}
	return 0, false
}

func FuzzTranslate(f *testing.F) {
	b := layout(f, paging.FourLevel)
	seedMem := b.Mem[32*mib : 32*mib+8*4096]
	f.Add(seedMem, uint64(0), uint64(kernText), uint64(direct+5), false)
	f.Add(seedMem, uint64(0x1000), uint64(userVA), uint64(0xffffffffffffffff), true)
	f.Add([]byte{0x03, 0, 0, 0, 0, 0, 0, 0}, uint64(0), uint64(0), uint64(0x1000), false)
	f.Fuzz(func(t *testing.T, mem []byte, cr3, va1, va2 uint64, five bool) {
		mode := paging.FourLevel
		if five {
			mode = paging.FiveLevel
		}
		tr := paging.New(image.NewBytes(mem), cr3, mode)
		vas := []uint64{va1, va2, va1 ^ 0x1000, va2 + 8}
		for round := 0; round < 2; round++ { // the second round is served from the cache
			res, _ := tr.Translate(vas)
			for i, va := range vas {
				want, ok := refWalk(mem, cr3, va, five)
				r := res[i]
				if !mode.Canonical(va) {
					if !errors.Is(r.Err, paging.ErrNonCanonical) {
						t.Fatalf("va %#x: %v, want ErrNonCanonical", va, r.Err)
					}
					continue
				}
				if ok != (r.Err == nil) || (ok && r.PA != want) {
					t.Fatalf("round %d va %#x: got %#x %v, reference %#x %v", round, va, r.PA, r.Err, want, ok)
				}
			}
		}
		bufs := []physmem.Range{{Addr: va1, Buf: make([]byte, 5000)}, {Addr: va2, Buf: make([]byte, 3)}}
		_ = tr.ReadVirt(bufs)
	})
}
