package scan

import "testing"

// TestScanBuffersAreReused: a buffer given back is handed out again for a
// request it can hold, writable over its whole length; beyond the spares
// kept, buffers are released.
func TestScanBuffersAreReused(t *testing.T) {
	n := 3<<20 + 17 // not a whole number of huge pages
	a := getBuffer(n)
	if len(a.b) != n {
		t.Fatalf("buffer of %d bytes, asked for %d", len(a.b), n)
	}
	for i := 0; i < n; i += 4096 {
		a.b[i] = byte(i)
	}
	a.b[n-1] = 1
	putBuffer(a)
	b := getBuffer(n - 100)
	if &b.b[0] != &a.b[0] || len(b.b) != n-100 {
		t.Errorf("a spare buffer was not reused for a smaller request")
	}
	extra := []scanBuffer{getBuffer(n), getBuffer(n), getBuffer(n)}
	putBuffer(b)
	for _, e := range extra {
		putBuffer(e) // the last one past spareMax is released
	}
	spare.Lock()
	kept := len(spare.bufs)
	spare.Unlock()
	if kept != spareMax {
		t.Errorf("%d spare buffers kept, want %d", kept, spareMax)
	}
}
