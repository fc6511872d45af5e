package fabric_test

import (
	"math/rand/v2"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestZZDebug(t *testing.T) {
	vm := newFakeVM(t, stampedContent(2048), 1, 1024)
	for g := 1024; g < 2048; g++ {
		vm.pageOut(fabric.GFN(g), 0)
	}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodAdaptive, CacheBytes: 1024 * 4096})
	readAll(t, m, 2048)
	t.Logf("after 1: len %d stats %+v", fabric.CacheLen(m), m.Stats())
	batch := newBatch(16)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		for i := range batch {
			batch[i].Addr = uint64(1024+rng.IntN(1024)) << 12
		}
		if err := m.ReadPhys(batch); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("after 2: len %d stats %+v", fabric.CacheLen(m), m.Stats())
}
