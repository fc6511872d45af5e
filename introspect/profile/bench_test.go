package profile

import (
	"os"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
)

// BenchmarkFromVmlinuz is the whole level-1 load: read, unxz, BCJ, parse.
func BenchmarkFromVmlinuz(b *testing.B) {
	realKernel(b)
	raw, err := os.ReadFile(vmlinuzPath())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := FromVmlinuzBytes(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFromVmlinux is the parse alone: kallsyms scan and decode,
// ksymtab cross-check, BTF load.
func BenchmarkFromVmlinux(b *testing.B) {
	vmlinux, _ := realKernel(b)
	for b.Loop() {
		if _, err := FromVmlinux(vmlinux); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFromMemory is the level-2 load from a 160 MiB guest.
func BenchmarkFromMemory(b *testing.B) {
	vmlinux, _ := realKernel(b)
	r := image.NewBytes(guestImage(b, vmlinux, 0x5000000, 0x1c600000, 160<<20))
	b.SetBytes(int64(r.Size()))
	for b.Loop() {
		if _, _, err := FromMemory(r, MemoryOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
