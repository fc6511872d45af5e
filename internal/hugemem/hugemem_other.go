//go:build !linux

package hugemem

// Size is the huge-page size memory is aligned to.
const Size = 2 << 20

// Map returns n bytes of Go heap.
func Map(n int) (b []byte, release func(), err error) { return make([]byte, n), func() {}, nil }

// Reserve is Map.
func Reserve(n int) (b []byte, release func(), err error) { return Map(n) }

// Populate writes every 4 KiB of b.
func Populate(b []byte) {
	for i := 0; i < len(b); i += 4096 {
		b[i] = 0
	}
}

// Advise does nothing where huge pages cannot be asked for.
func Advise(b []byte) {}
