package rdma

import (
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestCheckEntries(t *testing.T) {
	page := make([]byte, fabric.PageSize)
	batch := []fabric.SlotIO{
		{Slot: 0, Buf: page},
		{Slot: 8, Buf: page},
		{Slot: 3, Buf: page[:100]},
		{Slot: 7, Buf: page, Err: errors.New("stale")},
	}
	ok := checkEntries(batch, 8)
	if len(ok) != 2 || ok[0] != 0 || ok[1] != 3 {
		t.Fatalf("valid = %v, want [0 3]", ok)
	}
	if batch[3].Err != nil || batch[0].Err != nil {
		t.Fatalf("stale errors kept: %v %v", batch[0].Err, batch[3].Err)
	}
	if !errors.Is(batch[1].Err, fabric.ErrSlotRange) || !errors.Is(batch[2].Err, fabric.ErrBufferSize) {
		t.Fatalf("errs = %v / %v", batch[1].Err, batch[2].Err)
	}
}

func TestBatchResult(t *testing.T) {
	b := make([]fabric.SlotIO, 3)
	if err := batchResult(b, nil); err != nil {
		t.Fatalf("all ok: %v", err)
	}
	b[1].Err = fabric.ErrSlotRange
	if err := batchResult(b, nil); !errors.Is(err, fabric.ErrPartial) || !errors.Is(err, fabric.ErrSlotRange) {
		t.Fatalf("partial: %v", err)
	}
	failAll(b, []int{0, 1, 2}, fabric.ErrClosed)
	if !errors.Is(b[1].Err, fabric.ErrSlotRange) || !errors.Is(b[0].Err, fabric.ErrClosed) {
		t.Fatalf("failAll overwrote or missed: %v %v", b[0].Err, b[1].Err)
	}
	if err := batchResult(b, fabric.ErrClosed); !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("whole batch: %v", err)
	}
}
