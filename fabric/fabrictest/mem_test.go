package fabrictest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestMemTransportConformance(t *testing.T) {
	Run(t, MemFactory(0))
}

// With a delay, batches are really in flight when the peer dies or closes.
func TestMemTransportConformanceWithDelay(t *testing.T) {
	Run(t, MemFactory(200*time.Microsecond))
}

func TestMemTransportDelay(t *testing.T) {
	const delay = 20 * time.Millisecond
	m := NewMemTransport(4, delay)
	defer m.Close()
	start := time.Now()
	if err := m.ReadSlots(context.Background(), readBatch([]uint64{0, 1})); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay {
		t.Fatalf("batch served after %v, before its %v delay", d, delay)
	}
}

func TestMemTransportKillWakesWaiters(t *testing.T) {
	m := NewMemTransport(4, time.Hour)
	defer m.Close()
	done := make(chan error, 1)
	go func() { done <- m.ReadSlots(context.Background(), readBatch([]uint64{0})) }()
	time.Sleep(10 * time.Millisecond)
	m.Kill()
	select {
	case err := <-done:
		if !errors.Is(err, fabric.ErrPeer) {
			t.Fatalf("waiting batch after Kill: %v, want ErrPeer", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Kill did not wake a waiting batch")
	}
}

func TestMemTransportBytes(t *testing.T) {
	m := NewMemTransport(4, 0)
	if err := m.WriteSlots(context.Background(), writeBatch([]uint64{2}, 4)); err != nil {
		t.Fatal(err)
	}
	got := []fabric.SlotIO{{Slot: 2, Buf: m.Bytes()[2*fabric.PageSize : 3*fabric.PageSize]}}
	checkContent(t, got, 4)
}

func BenchmarkMemTransport(b *testing.B) {
	RunBenchmarks(b, MemFactory(0))
}
