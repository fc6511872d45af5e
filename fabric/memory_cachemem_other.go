//go:build !linux

package fabric

const hugePage = 2 << 20

func newCacheArena(n int) (*cacheArena, error) {
	return &cacheArena{mem: make([]byte, n), release: func() {}}, nil
}

func populate(b []byte) {
	for i := 0; i < len(b); i += PageSize {
		b[i] = 0
	}
}
