package hugemem

import "testing"

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
