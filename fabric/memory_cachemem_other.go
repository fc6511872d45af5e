//go:build !linux

package fabric

func newCacheChunk(n int) []byte { return make([]byte, n) }
