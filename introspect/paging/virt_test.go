package paging_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

func fill(mem []byte, pa, n uint64, seed byte) {
	for i := uint64(0); i < n; i++ {
		mem[pa+i] = seed + byte(i*7)
	}
}

func TestReadVirt(t *testing.T) {
	for _, mode := range []paging.Mode{paging.FourLevel, paging.FiveLevel} {
		t.Run(mode.String(), func(t *testing.T) {
			b := layout(t, mode)
			// kernText pages 0..3 live in frames 0x103000, 0x102000, 0x101000, 0x100000.
			virt := make([]byte, 4*4096)
			for i := uint64(0); i < 4; i++ {
				fill(b.Mem, 0x100000+(3-i)*4096, 4096, byte(i*50))
				copy(virt[i*4096:], b.Mem[0x100000+(3-i)*4096:0x100000+(4-i)*4096])
			}
			fill(b.Mem, 0x400000, 2*mib, 9)
			cr := &countingReader{Reader: b.Reader()}
			tr := paging.New(cr, b.CR3(), mode)
			ranges := []physmem.Range{
				{Addr: kernText + 4000, Buf: make([]byte, 3*4096)},      // crosses three scattered frames
				{Addr: kernData + 100, Buf: make([]byte, 64*1024)},      // inside one 2 MiB page
				{Addr: kernText + 3*4096 + 10, Buf: make([]byte, 5000)}, // runs into an unmapped page
				{Addr: kernText, Buf: nil},
				{Addr: 0x0000800000000000, Buf: make([]byte, 8)},
			}
			err := tr.ReadVirt(ranges)
			if !errors.Is(err, physmem.ErrPartial) {
				t.Fatalf("ReadVirt = %v, want ErrPartial", err)
			}
			if ranges[0].Err != nil || !bytes.Equal(ranges[0].Buf, virt[4000:4000+3*4096]) {
				t.Errorf("cross-page range: err %v or bytes differ", ranges[0].Err)
			}
			if ranges[1].Err != nil || !bytes.Equal(ranges[1].Buf, b.Mem[0x400000+100:0x400000+100+64*1024]) {
				t.Errorf("large-page range: err %v or bytes differ", ranges[1].Err)
			}
			if !errors.Is(ranges[2].Err, paging.ErrNotPresent) {
				t.Errorf("range into an unmapped page: %v, want ErrNotPresent", ranges[2].Err)
			}
			if ranges[3].Err != nil {
				t.Errorf("zero-length range: %v", ranges[3].Err)
			}
			if mode == paging.FourLevel && !errors.Is(ranges[4].Err, paging.ErrNonCanonical) {
				t.Errorf("non-canonical range: %v", ranges[4].Err)
			}
			// One translation batch per level plus one data batch; the 64 KiB
			// in one 2 MiB page is merged into a single physical range.
			cr.reset()
			again := []physmem.Range{{Addr: kernData + 100, Buf: make([]byte, 64*1024)}}
			if err := tr.ReadVirt(again); err != nil {
				t.Fatal(err)
			}
			if cr.batches.Load() != 1 || cr.ranges.Load() != 1 {
				t.Errorf("cached contiguous read: %d batches, %d ranges; want 1 and 1", cr.batches.Load(), cr.ranges.Load())
			}
		})
	}
}

func TestReadVirtPhysicalFailure(t *testing.T) {
	b := layout(t, paging.FourLevel)
	if err := b.Map(0xffffffffa0000000, 1<<40, paging.PageSize4K); err != nil { // frame beyond memory
		t.Fatal(err)
	}
	tr := paging.New(b.Reader(), b.CR3(), paging.FourLevel)
	rs := []physmem.Range{{Addr: 0xffffffffa0000000, Buf: make([]byte, 16)}, {Addr: userVA, Buf: make([]byte, 16)}}
	if err := tr.ReadVirt(rs); !errors.Is(err, physmem.ErrPartial) {
		t.Fatalf("ReadVirt = %v", err)
	}
	if !errors.Is(rs[0].Err, physmem.ErrOutOfRange) || rs[1].Err != nil {
		t.Fatalf("errors %v, %v; want ErrOutOfRange, nil", rs[0].Err, rs[1].Err)
	}
}
