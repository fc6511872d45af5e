package profile

import "github.com/vmemtrans/vmemtrans/introspect/physmem"

// readPhysLenient reads n bytes at addr; pages that cannot be read (holes
// in a dump) read as zeros, so a scan walks past them.
func readPhysLenient(r physmem.Reader, addr uint64, n int) []byte {
	return physmem.ReadLenient(r, addr, make([]byte, n))
}
