package kvmhost

import "testing"

func TestSlotAllocOrderReuseAndExhaustion(t *testing.T) {
	a := newSlotAlloc(4)
	for want := range uint64(3) {
		if s, ok := a.get(); !ok || s != want {
			t.Fatalf("get = %d, %v; want %d on a fresh region", s, ok, want)
		}
	}
	a.put(1)
	if a.available() != 2 {
		t.Fatalf("available %d, want 2 (slot 3 unused, slot 1 handed back)", a.available())
	}
	if s, _ := a.get(); s != 1 {
		t.Fatalf("get = %d, want the slot handed back (1)", s)
	}
	if s, _ := a.get(); s != 3 {
		t.Fatalf("get = %d, want the last unused slot (3)", s)
	}
	if s, ok := a.get(); ok {
		t.Fatalf("get on a full region = %d, want none", s)
	}
	if a.available() != 0 {
		t.Fatalf("available %d on a full region", a.available())
	}
}
