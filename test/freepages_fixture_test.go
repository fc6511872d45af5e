package test

import (
	"bytes"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// The fixture guests boot with init_on_free=1, so every page the buddy
// allocator holds free reads as zeros: a page FreePages reports that is not
// all zeros is a page in use, which a workload must never write.
func TestFixtureFreePagesAreFree(t *testing.T) {
	for _, name := range []string{"linux-6.1-clean", "linux-6.1-attack"} {
		t.Run(name, func(t *testing.T) {
			f, k := fixtureKernel(t, name, 2)
			maxPFN := f.img.Size() >> 12
			free, err := linux.FreePages(k, maxPFN)
			if err != nil {
				t.Fatal(err)
			}
			const ramPages = 256 << 20 >> 12
			if len(free) < ramPages/4 {
				t.Fatalf("%d free pages: an idle 256 MiB guest has far more", len(free))
			}
			zero := make([]byte, 4096)
			batch := make([]physmem.Range, len(free))
			for i, pfn := range free {
				batch[i] = physmem.Range{Addr: pfn << 12, Buf: make([]byte, 4096)}
			}
			_ = f.img.ReadPhys(batch)
			nonzero := 0
			for _, r := range batch {
				if r.Err != nil {
					t.Errorf("free page %#x unreadable: %v", r.Addr, r.Err)
				} else if !bytes.Equal(r.Buf, zero) {
					nonzero++
				}
			}
			if nonzero > 0 {
				t.Errorf("%d of %d free pages hold data: not free", nonzero, len(free))
			}
			for i := 1; i < len(free); i++ {
				if free[i] <= free[i-1] {
					t.Fatalf("free pages not ascending at %d: %#x after %#x", i, free[i], free[i-1])
				}
			}
			t.Logf("%d free pages of %d frames", len(free), maxPFN)
		})
	}
}
