package physmemtest_test

import (
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

func TestFaultyConformance(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		return &physmemtest.Faulty{R: image.NewBytes(c), Fail: func(uint64) bool { return false }}
	})
}

func TestFaultyFailsChosenPages(t *testing.T) {
	f := physmemtest.FailPages(image.NewBytes(make([]byte, 5*4096)), 2*4096+17)
	batch := []physmem.Range{
		{Addr: 0, Buf: make([]byte, 4096)},
		{Addr: 4096 + 4000, Buf: make([]byte, 200)}, // straddles into page 2
		{Addr: 3 * 4096, Buf: make([]byte, 4096)},
	}
	if err := f.ReadPhys(batch); !errors.Is(err, physmem.ErrPartial) {
		t.Fatalf("ReadPhys = %v, want ErrPartial", err)
	}
	if batch[0].Err != nil || batch[2].Err != nil {
		t.Errorf("good ranges failed: %v, %v", batch[0].Err, batch[2].Err)
	}
	if !errors.Is(batch[1].Err, physmemtest.ErrInjected) {
		t.Errorf("range touching page 2: err %v, want ErrInjected", batch[1].Err)
	}
	if !f.Hit(2*4096) || f.Hit(3*4096) {
		t.Errorf("Hit: page 2 %v (want true), page 3 %v (want false)", f.Hit(2*4096), f.Hit(3*4096))
	}
}
