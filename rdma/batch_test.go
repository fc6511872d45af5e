package rdma

import (
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestFailAll(t *testing.T) {
	b := make([]fabric.SlotIO, 3)
	b[1].Err = fabric.ErrSlotRange
	failAll(b, []int{0, 1}, fabric.ErrClosed)
	if !errors.Is(b[1].Err, fabric.ErrSlotRange) || !errors.Is(b[0].Err, fabric.ErrClosed) || b[2].Err != nil {
		t.Fatalf("failAll overwrote or missed: %v %v %v", b[0].Err, b[1].Err, b[2].Err)
	}
	if err := fabric.FinishBatch(b, fabric.ErrClosed); !errors.Is(err, fabric.ErrPartial) || !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("chain failure over part of a batch: %v", err)
	}
}
