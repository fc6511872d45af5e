package hugemem

import "testing"

// TestMap: the memory is n bytes long, writable to its end after Populate,
// and released without error; its start is huge-page aligned on Linux.
func TestMap(t *testing.T) {
	n := 3*Size + 17
	b, release, err := Map(n)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if len(b) != n {
		t.Fatalf("len %d, want %d", len(b), n)
	}
	Populate(b)
	b[0], b[n-1] = 1, 2
	if b[0] != 1 || b[n-1] != 2 {
		t.Error("memory does not keep what was written")
	}
}

// TestAdvise: advice on a heap slice, aligned or not, large or tiny, keeps
// what is written to it.
func TestAdvise(t *testing.T) {
	for _, n := range []int{0, 100, 5*Size + 123} {
		b := make([]byte, n)
		Advise(b)
		Advise(b[min(1, n):])
		for i := range b {
			b[i] = byte(i)
		}
		for i := range b {
			if b[i] != byte(i) {
				t.Fatalf("%d bytes: byte %d is %d", n, i, b[i])
			}
		}
	}
}
