package image_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/image/imagetest"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// holeyDump has RAM at [0, 8K) and [1M, 1M+8K) and nothing in between, like
// a dump's low RAM and its separate VGA/BIOS segments.
func holeyDump() ([]byte, []byte, []byte) {
	low := bytes.Repeat([]byte{0xaa}, 8192)
	high := bytes.Repeat([]byte{0xbb}, 8192)
	return imagetest.BuildDump(imagetest.DumpSpec{
		Segments: []imagetest.DumpSegment{{Phys: 1 << 20, Data: high}, {Phys: 0, Data: low}},
		CPUs: []imagetest.DumpCPU{
			{CR0: 0x80050033, CR3: 0x1944000, CR4: 0x6f0, RIP: 0xffffffff81c0ac0e, KernelGSBase: 0xffff88803ec00000},
			{CR3: 0x2a0c001, CR4: 0x6f0 | paging.CR4LA57, RSP: 0xffffc90000013e80},
		},
		VMCoreInfo: "OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\n",
	}), low, high
}

func TestDumpHolesAndSegments(t *testing.T) {
	dump, low, high := holeyDump()
	img, err := image.NewDumpBytes(dump)
	if err != nil {
		t.Fatal(err)
	}
	if img.Size() != 1<<20+8192 {
		t.Fatalf("Size() = %#x, want %#x", img.Size(), 1<<20+8192)
	}
	batch := []physmem.Range{
		{Addr: 0, Buf: make([]byte, len(low))},
		{Addr: 8192 - 4, Buf: make([]byte, 8)}, // runs into the hole
		{Addr: 0x80000, Buf: make([]byte, 16)}, // inside the hole
		{Addr: 1 << 20, Buf: make([]byte, len(high))},
	}
	if err := img.ReadPhys(batch); !errors.Is(err, physmem.ErrPartial) {
		t.Fatalf("ReadPhys = %v, want physmem.ErrPartial", err)
	}
	if batch[0].Err != nil || !bytes.Equal(batch[0].Buf, low) {
		t.Errorf("low segment: err %v", batch[0].Err)
	}
	if batch[3].Err != nil || !bytes.Equal(batch[3].Buf, high) {
		t.Errorf("high segment: err %v", batch[3].Err)
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(batch[i].Err, physmem.ErrOutOfRange) {
			t.Errorf("range %d in the hole: err %v, want physmem.ErrOutOfRange", i, batch[i].Err)
		}
	}
}

func TestDumpCPUsAndVMCoreInfo(t *testing.T) {
	dump, _, _ := holeyDump()
	img, err := image.NewDumpBytes(dump)
	if err != nil {
		t.Fatal(err)
	}
	cpus := img.CPUs()
	if len(cpus) != 2 {
		t.Fatalf("%d CPUs, want 2", len(cpus))
	}
	c0, c1 := cpus[0], cpus[1]
	if !c0.HasGeneral || !c0.HasControl || c0.Index != 0 {
		t.Errorf("cpu0 flags: %+v", c0)
	}
	if c0.CR0 != 0x80050033 || c0.CR3 != 0x1944000 || c0.CR4 != 0x6f0 || c0.LA57() {
		t.Errorf("cpu0 control registers: %+v", c0)
	}
	if c0.RIP != 0xffffffff81c0ac0e || c0.KernelGSBase != 0xffff88803ec00000 {
		t.Errorf("cpu0 RIP %#x KernelGSBase %#x", c0.RIP, c0.KernelGSBase)
	}
	if c1.CR3 != 0x2a0c001 || !c1.LA57() || c1.RSP != 0xffffc90000013e80 || c1.Index != 1 {
		t.Errorf("cpu1: %+v", c1)
	}
	if !strings.Contains(img.VMCoreInfo(), "OSRELEASE=6.1.0-56-amd64") {
		t.Errorf("VMCoreInfo() = %q", img.VMCoreInfo())
	}
}

func TestDumpWithoutQEMUNotes(t *testing.T) {
	dump := imagetest.BuildDump(imagetest.DumpSpec{
		Segments:      []imagetest.DumpSegment{{Phys: 0, Data: make([]byte, 4096)}},
		CPUs:          []imagetest.DumpCPU{{CR3: 0x1000, RIP: 0x1234}},
		OmitQEMUNotes: true,
	})
	img, err := image.NewDumpBytes(dump)
	if err != nil {
		t.Fatal(err)
	}
	cpus := img.CPUs()
	if len(cpus) != 1 || cpus[0].HasControl || !cpus[0].HasGeneral || cpus[0].RIP != 0x1234 || cpus[0].CR3 != 0 {
		t.Fatalf("CPUs() = %+v, want general registers only", cpus)
	}
}

func TestDumpMalformed(t *testing.T) {
	good, _, _ := holeyDump()
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"short":        good[:40],
		"not elf":      mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"elf32":        mutate(func(b []byte) []byte { b[4] = 1; return b }),
		"not core":     mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[16:], 2); return b }),
		"not x86-64":   mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[18:], 183); return b }),
		"phdrs beyond": mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[32:], 1<<40); return b }),
		"load beyond": mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[64+56+32:], 1<<40) // second phdr: p_filesz
			return b
		}),
		"truncated": good[:len(good)-100],
		"note overrun": mutate(func(b []byte) []byte {
			noteOff := binary.LittleEndian.Uint64(b[64+8:])
			binary.LittleEndian.PutUint32(b[noteOff+4:], 1<<30) // first note's descsz
			return b
		}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			img, err := image.NewDumpBytes(b)
			if !errors.Is(err, image.ErrFormat) {
				t.Fatalf("NewDumpBytes = %v, %v; want ErrFormat", img, err)
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := image.Open(t.TempDir() + "/none.img"); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
}

func TestOpenCorruptZstd(t *testing.T) {
	b := zstdBytes(t, bytes.Repeat([]byte("guest memory "), 10000))
	b = b[:len(b)/2]
	if _, err := image.Open(writeFile(t, "cut.zst", b)); !errors.Is(err, image.ErrFormat) {
		t.Fatalf("Open of truncated zstd = %v, want ErrFormat", err)
	}
}

func FuzzParseDump(f *testing.F) {
	good, _, _ := holeyDump()
	f.Add(good)
	f.Add(good[:64])
	f.Add(imagetest.BuildDump(imagetest.DumpSpec{VMCoreInfo: "X=1"}))
	f.Add(testDump(make([]byte, 3*4096)))
	// A huge zero tail (memsz 2^62) and an extended program header count.
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(huge[64+56+40:], 1<<62) // second phdr: p_memsz
	f.Add(huge)
	xnum := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(xnum[56:], 0xffff)
	f.Add(xnum)
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := image.NewDumpBytes(b)
		if err != nil {
			if !errors.Is(err, image.ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		_ = img.CPUs()
		buf := make([]byte, 64)
		for _, a := range []uint64{0, img.Size() / 2, img.Size() - 1, img.Size()} {
			_ = img.ReadPhys([]physmem.Range{{Addr: a, Buf: buf}})
		}
		// Bounded time: only bytes the file holds are scanned.
		physmem.Scan(img, []byte("swapper/0"), func(uint64) bool { return true })
	})
}

// TestDumpNotLongMode: QEMU marks a dump EM_386 when the vCPU was not in long
// mode; the 32-bit NT_PRSTATUS is then skipped and CR3 still comes from the
// QEMU note.
func TestDumpNotLongMode(t *testing.T) {
	dump, _, _ := holeyDump()
	binary.LittleEndian.PutUint16(dump[18:], 3)
	img, err := image.NewDumpBytes(dump)
	if err != nil {
		t.Fatal(err)
	}
	cpus := img.CPUs()
	if len(cpus) != 2 || cpus[0].HasGeneral || !cpus[0].HasControl || cpus[0].CR3 != 0x1944000 {
		t.Fatalf("CPUs() = %+v, want control registers from the QEMU notes only", cpus)
	}
}

func TestExtentsAreTheLayout(t *testing.T) {
	content := make([]byte, 5*4096)
	img, err := image.NewDumpBytes(imagetest.BuildDump(imagetest.DumpSpec{
		Segments: []imagetest.DumpSegment{{Phys: 0, Data: content[:4096]}, {Phys: 4096, Data: content[:4096]}, {Phys: 3 * 4096, Data: content[:8192]}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := img.Extents()
	want := []image.Extent{{0, 2 * 4096}, {3 * 4096, 5 * 4096}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Extents = %v, want %v", got, want)
	}
}
