package fabric

import (
	"errors"
	"testing"
)

func TestStartBatch(t *testing.T) {
	b := []SlotIO{
		{Slot: 0, Buf: make([]byte, PageSize), Err: ErrPeer}, // stale error cleared
		{Slot: 8, Buf: make([]byte, PageSize)},
		{Slot: 1, Buf: make([]byte, 10)},
		{Slot: 9, Buf: nil}, // both wrong: the slot is reported
		{Slot: 7, Buf: make([]byte, PageSize)},
	}
	ok := StartBatch(b, 8)
	if len(ok) != 2 || ok[0] != 0 || ok[1] != 4 || b[0].Err != nil {
		t.Fatalf("servable %v, entry 0 err %v", ok, b[0].Err)
	}
	if !errors.Is(b[1].Err, ErrSlotRange) || !errors.Is(b[2].Err, ErrBufferSize) || !errors.Is(b[3].Err, ErrSlotRange) {
		t.Errorf("entry errors %v / %v / %v", b[1].Err, b[2].Err, b[3].Err)
	}
	for i := range b {
		if want := CheckSlotIO(b[i], 8); (want == nil) != (b[i].Err == nil) {
			t.Errorf("entry %d: %v, CheckSlotIO says %v", i, b[i].Err, want)
		}
	}
}

func TestFinishBatch(t *testing.T) {
	b := make([]SlotIO, 3)
	if err := FinishBatch(b, nil); err != nil {
		t.Fatalf("clean batch: %v", err)
	}
	b[1].Err = CheckSlot(5, 4)
	if err := FinishBatch(b, nil); !errors.Is(err, ErrPartial) || !errors.Is(err, ErrSlotRange) {
		t.Errorf("one bad entry: %v, want ErrPartial and the entry's error", err)
	}
	b[2].Err = ErrPeer
	if err := FinishBatch(b, ErrPeer); !errors.Is(err, ErrPartial) || !errors.Is(err, ErrPeer) {
		t.Errorf("a cause striking part of the batch: %v, want ErrPartial and the cause", err)
	}
	if err := FailBatch(b, ErrClosed); err != ErrClosed || !errors.Is(b[0].Err, ErrClosed) || !errors.Is(b[1].Err, ErrClosed) {
		t.Errorf("FailBatch: %v, entries %v %v", err, b[0].Err, b[1].Err)
	}
	if err := FinishBatch(b, ErrClosed); err != ErrClosed {
		t.Errorf("every entry failed by the cause: %v, want the cause alone", err)
	}
}
