package hugemem

import (
	"testing"
	"time"
)

// TestSpareReuses: a buffer given back is handed out again for a request
// it can hold, writable over its whole length; beyond Max, buffers are
// released, and Close releases the kept ones.
func TestSpareReuses(t *testing.T) {
	s := Spare{Max: 2}
	n := 3<<20 + 17 // not a whole number of huge pages
	a := s.Get(n)
	if len(a.B) != n {
		t.Fatalf("buffer of %d bytes, asked for %d", len(a.B), n)
	}
	for i := 0; i < n; i += 4096 {
		a.B[i] = byte(i)
	}
	a.B[n-1] = 1
	s.Put(a)
	b := s.Get(n - 100)
	if &b.B[0] != &a.B[0] || len(b.B) != n-100 {
		t.Errorf("a spare buffer was not reused for a smaller request")
	}
	extra := []Buffer{s.Get(n), s.Get(n), s.Get(n)}
	s.Put(b)
	for _, e := range extra {
		s.Put(e) // the last one past Max is released
	}
	if s.Len() != 2 {
		t.Errorf("%d spare buffers kept, want 2", s.Len())
	}
	s.Close()
	if s.Len() != 0 {
		t.Errorf("%d buffers kept after Close", s.Len())
	}
	s.Put(s.Get(4096))
	if s.Len() != 0 {
		t.Errorf("a buffer was kept after Close")
	}
}

// TestSparePrefill: Prefill keeps ready buffers for later Gets, never more
// than Max, and none once the Spare is closed.
func TestSparePrefill(t *testing.T) {
	s := Spare{Max: 2}
	defer s.Close()
	s.Prefill(3, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for s.Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the third one comes and goes
	if s.Len() != 2 {
		t.Fatalf("%d buffers kept after Prefill(3), want Max 2", s.Len())
	}
	b := s.Get(1 << 20)
	if len(b.B) != 1<<20 || s.Len() != 1 {
		t.Fatalf("Get took a %d-byte buffer, %d left; want a prefilled 1 MiB one, 1 left", len(b.B), s.Len())
	}
	b.B[len(b.B)-1] = 1
	s.Put(b)

	closed := Spare{Max: 2}
	closed.Close()
	closed.Prefill(2, 4096)
	time.Sleep(20 * time.Millisecond)
	if closed.Len() != 0 {
		t.Fatalf("a closed Spare kept %d prefilled buffers", closed.Len())
	}
}

// TestSpareGetWaitsForPrefill: a Get while Prefill is making buffers takes
// a prefilled one instead of making its own.
func TestSpareGetWaitsForPrefill(t *testing.T) {
	s := Spare{Max: 2}
	defer s.Close()
	s.Prefill(1, 8<<20)
	b := s.Get(8 << 20) // at once: the prefill has hardly started
	s.mu.Lock()
	pending := s.pending
	s.mu.Unlock()
	if pending != 0 || s.Len() != 0 {
		t.Fatalf("after the Get: prefill pending %d, %d kept; want the Get to have waited for the prefilled buffer and taken it", pending, s.Len())
	}
	s.Put(b)
	if s.Len() != 1 {
		t.Fatalf("%d buffers kept after the prefilled one came back, want 1", s.Len())
	}
}
