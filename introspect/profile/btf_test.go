package profile

import (
	"bytes"
	"debug/elf"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

func vmlinuxBTF(t *testing.T, vmlinux []byte) []byte {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.Section(".BTF").Data()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The blob wrapped as an ELF section reads back as the same types as the
// raw blob, whatever its length's alignment.
func TestBTFELFLoadsAsRaw(t *testing.T) {
	vmlinux, _ := realKernel(t)
	raw := vmlinuxBTF(t, vmlinux)
	want, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []int{0, 1, 3, 7} {
		blob := append(append([]byte(nil), raw...), make([]byte, extra)...)
		e := newBTFELF(blob)
		all := make([]byte, len(e.head)+len(e.blob)+len(e.tail))
		if n, err := e.ReadAt(all, 0); n != len(all) || err != nil {
			t.Fatalf("extra %d: ReadAt whole object: %d, %v", extra, n, err)
		}
		if n, _ := e.ReadAt(make([]byte, 10), int64(len(all)-4)); n != 4 {
			t.Errorf("extra %d: ReadAt across the end read %d bytes, want 4", extra, n)
		}
		if _, err := elf.NewFile(bytes.NewReader(all)); err != nil {
			t.Fatalf("extra %d: not an ELF: %v", extra, err)
		}
		got, err := btf.LoadSpecFromReader(e)
		if err != nil {
			t.Fatalf("extra %d: %v", extra, err)
		}
		for _, name := range []string{"task_struct", "mm_struct", "module"} {
			var w, g *btf.Struct
			if err := want.TypeByName(name, &w); err != nil {
				t.Fatal(err)
			}
			if err := got.TypeByName(name, &g); err != nil {
				t.Fatalf("extra %d: %s: %v", extra, name, err)
			}
			if w.Size != g.Size || len(w.Members) != len(g.Members) {
				t.Errorf("extra %d: %s is %d bytes, %d members, want %d, %d", extra, name, g.Size, len(g.Members), w.Size, len(w.Members))
			}
		}
	}
}

// The BTF guessed ahead of the kallsyms decode is the blob __start_BTF
// points at, and a blob elsewhere is not taken for it.
func TestBTFAheadGuess(t *testing.T) {
	vmlinux, want := realKernel(t)
	const textPhys, slide = 0x9000000, 0x13e00000
	mem := guestImage(t, vmlinux, textPhys, slide, 240<<20)
	_, info, err := FromMemory(image.NewBytes(mem), MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantComm, _ := want.Offset("task_struct", "comm")

	ahead := startBTFAhead(image.NewBytes(mem), info.KallsymsPhys)
	ty, _, ok := ahead.at(info.BTFPhys, info.BTFSize)
	if !ok {
		t.Fatalf("guess from the token table at %#x missed the blob at %#x+%d (found %#x+%d: %v)", info.KallsymsPhys, info.BTFPhys, info.BTFSize, ahead.phys, ahead.size, ahead.err)
	}
	if got, err := ty.offset("task_struct", "comm"); err != nil || got != wantComm {
		t.Errorf("guessed BTF: task_struct.comm at %d (%v), want %d", got, err, wantComm)
	}

	// a copy of the blob in free memory below the kernel is found first
	decoy := uint64(0x1000000)
	copy(mem[decoy:], mem[info.BTFPhys:info.BTFPhys+uint64(info.BTFSize)])
	ahead = startBTFAhead(image.NewBytes(mem), decoy-4096)
	if _, _, ok := ahead.at(info.BTFPhys, info.BTFSize); ok || ahead.phys != decoy {
		t.Errorf("a blob at %#x was taken for the one at %#x (guess at %#x)", decoy, info.BTFPhys, ahead.phys)
	}

	// pieces smaller than the blob (a split VM lends in rounds): the
	// search stops at the header and the blob is read after the lend
	lent := &countingLender{Lender: &physmemtest.Choppy{R: image.NewBytes(mem), Max: 100000, Seed: 5}}
	ahead = startBTFAhead(lent, info.KallsymsPhys)
	if ty, _, ok := ahead.at(info.BTFPhys, info.BTFSize); !ok {
		t.Errorf("a blob lent in pieces was not guessed (found %#x+%d: %v)", ahead.phys, ahead.size, ahead.err)
	} else if got, _ := ty.offset("task_struct", "comm"); got != wantComm {
		t.Errorf("guess from pieces: task_struct.comm at %d, want %d", got, wantComm)
	}
	if limit := info.BTFPhys - info.KallsymsPhys + 100000; lent.bytes > limit {
		t.Errorf("the guess lent %d bytes past the token table, want at most %d (up to the header's piece)", lent.bytes, limit)
	}
	// every segment shown wrong first (shifted by a byte): whatever is
	// guessed from a wrong showing is not taken
	for seed := uint64(1); seed <= 4; seed++ {
		ahead = startBTFAhead(&physmemtest.Choppy{R: image.NewBytes(mem), Max: 1 << 30, RetryEvery: 1, Seed: seed}, info.KallsymsPhys)
		if ty, _, ok := ahead.at(info.BTFPhys, info.BTFSize); ok {
			if got, _ := ty.offset("task_struct", "comm"); got != wantComm {
				t.Errorf("guess through a retrying lender: task_struct.comm at %d, want %d", got, wantComm)
			}
		}
	}
}

// countingLender counts the bytes its lender shows.
type countingLender struct {
	physmem.Lender
	bytes uint64
}

func (c *countingLender) LendPhys(addr, n uint64, visit func(physmem.Segment) bool) error {
	return c.Lender.LendPhys(addr, n, func(s physmem.Segment) bool {
		c.bytes += s.Len
		return visit(s)
	})
}
