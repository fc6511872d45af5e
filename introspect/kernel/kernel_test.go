package kernel

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/image/imagetest"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/paging/pagingtest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
)

var (
	kernelOnce    sync.Once
	kernelVmlinux []byte
	kernelProfile *profile.Profile
	kernelErr     error
)

func vmlinuzPath() string {
	if p := os.Getenv("VMT_VMLINUZ"); p != "" {
		return p
	}
	for _, pat := range []string{"../../test/fixtures/*/vmlinuz*", "/tmp/vmt-k/stage/boot/vmlinuz-*"} {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// realKernel is a real Debian kernel's vmlinux and profile.
func realKernel(t testing.TB) ([]byte, *profile.Profile) {
	t.Helper()
	path := vmlinuzPath()
	if path == "" {
		t.Skip("no kernel image: set VMT_VMLINUZ, add test/fixtures, or run " +
			"bash test/rig/lib/fetch-debs.sh /tmp/vmt-k/debs /tmp/vmt-k/stage")
	}
	kernelOnce.Do(func() {
		b, err := os.ReadFile(path)
		if err != nil {
			kernelErr = err
			return
		}
		if kernelVmlinux, kernelErr = profile.ExtractVmlinux(b); kernelErr == nil {
			kernelProfile, kernelErr = profile.FromVmlinux(kernelVmlinux)
		}
	})
	if kernelErr != nil {
		t.Fatalf("kernel %s: %v", path, kernelErr)
	}
	return kernelVmlinux, kernelProfile
}

type guest struct {
	mem             []byte
	cr3             uint64
	textPhys, slide uint64
	initTaskPhys    uint64
	mode            paging.Mode
	l               layout
}

// bootGuest lays the kernel image out at textPhys, maps it at its link
// address plus slide with 2 MiB pages in tables rooted at init_top_pgt, and
// does what boot does to the fields discovery reads: names the idle task
// and relocates init_mm.pgd.
func bootGuest(t testing.TB, mode paging.Mode, textPhys, slide uint64) *guest {
	t.Helper()
	vmlinux, p := realKernel(t)
	l, err := layoutOf(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{textPhys: textPhys, slide: slide, mode: mode, l: l}
	toPhys := func(link uint64) uint64 { return link - l.text + textPhys }
	g.cr3 = toPhys(l.topPgt)
	b := pagingtest.NewBuilder(mode, 192<<20, g.cr3)
	var imageEnd uint64
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_LOAD {
			continue
		}
		pa := prog.Paddr - (l.text - profile.KernelMapBase) + textPhys
		if _, err := prog.ReadAt(b.Mem[pa:pa+prog.Filesz], 0); err != nil {
			t.Fatal(err)
		}
		imageEnd = max(imageEnd, pa+prog.Memsz)
	}
	clear(b.Mem[g.cr3 : g.cr3+8*4096])
	for off := uint64(0); textPhys+off < imageEnd; off += paging.PageSize2M {
		if err := b.Map(l.text+slide+off, textPhys+off, paging.PageSize2M); err != nil {
			t.Fatal(err)
		}
	}
	g.initTaskPhys = toPhys(l.initTask)
	comm := b.Mem[g.initTaskPhys+l.commOff:]
	copy(comm[:16], initComm)
	le.PutUint64(b.Mem[toPhys(l.initMM)+l.pgdOff:], l.topPgt+slide)
	g.mem = b.Mem
	return g
}

func checkBound(t *testing.T, k *Kernel, g *guest, method Method) {
	t.Helper()
	if k.Slide() != g.slide {
		t.Errorf("slide %#x, want %#x", k.Slide(), g.slide)
	}
	if k.Method() != method {
		t.Errorf("method %s, want %s", k.Method(), method)
	}
	it, err := k.Symbol("init_task")
	if err != nil || it != g.l.initTask+g.slide {
		t.Fatalf("init_task at %#x (%v), want %#x", it, err, g.l.initTask+g.slide)
	}
	// phys = virt - __START_KERNEL_map + phys_base, modulo 2^64
	if pa := it - profile.KernelMapBase + k.PhysBase(); pa != g.initTaskPhys {
		t.Errorf("phys_base %#x puts init_task at %#x, want %#x", k.PhysBase(), pa, g.initTaskPhys)
	}
	comm := make([]byte, 16)
	commOff, _ := k.Offset("task_struct", "comm")
	if err := k.ReadVirt([]physmem.Range{{Addr: it + commOff, Buf: comm}}); err != nil || !bytes.Equal(comm, initComm) {
		t.Errorf("ReadVirt(init_task.comm) = %q, %v", comm, err)
	}
	s, e, err := k.TextRange()
	if err != nil || s != profile.DefaultTextLink+g.slide || e <= s {
		t.Errorf("TextRange = %#x..%#x, %v", s, e, err)
	}
	if pc, _ := k.Symbol("current_task"); pc >= profile.KernelMapBase {
		t.Errorf("per-cpu current_task slid to %#x", pc)
	}
	if name, off, ok := k.Lookup(it + 16); !ok || name != "init_task" || off != 16 {
		t.Errorf("Lookup(init_task+16) = %s+%d", name, off)
	}
}

func TestProbeAndScanAgree(t *testing.T) {
	cases := []struct {
		name            string
		mode            paging.Mode
		textPhys, slide uint64
	}{
		{"4-level negative phys_base", paging.FourLevel, 0x5000000, 0x1c600000},
		{"4-level no slide", paging.FourLevel, 0x1000000, 0},
		{"5-level", paging.FiveLevel, 0x7200000, 0x3fe00000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := bootGuest(t, c.mode, c.textPhys, c.slide)
			r := image.NewBytes(g.mem)
			_, p := realKernel(t)
			probed, err := New(r, p, Options{CR3: g.cr3 | 0x1001 /* PCID, PTI user bit */, Mode: c.mode})
			if err != nil {
				t.Fatal(err)
			}
			checkBound(t, probed, g, MethodProbe)
			scanned, err := New(r, p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkBound(t, scanned, g, MethodScan)
			if scanned.CR3() != g.cr3 {
				t.Errorf("scan derived CR3 %#x, want %#x", scanned.CR3(), g.cr3)
			}
		})
	}
}

func TestCR3FromDumpNotes(t *testing.T) {
	g := bootGuest(t, paging.FourLevel, 0x3400000, 0x8000000)
	dump := imagetest.BuildDump(imagetest.DumpSpec{
		Segments: imagetest.SplitContent(g.mem, 3),
		CPUs:     []imagetest.DumpCPU{{CR3: g.cr3, CR4: 0x3506f0 &^ paging.CR4LA57}},
	})
	img, err := image.NewDumpBytes(dump)
	if err != nil {
		t.Fatal(err)
	}
	_, p := realKernel(t)
	k, err := New(img, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkBound(t, k, g, MethodProbe)
	if k.CR3() != g.cr3 {
		t.Errorf("CR3 %#x, want the dump's %#x", k.CR3(), g.cr3)
	}
}

func TestNoKernelThere(t *testing.T) {
	_, p := realKernel(t)
	r := image.NewBytes(make([]byte, 8<<20))
	if _, err := New(r, p, Options{}); !errors.Is(err, ErrNoInitTask) {
		t.Errorf("scan of empty memory: %v, want ErrNoInitTask", err)
	}
	if _, err := New(r, p, Options{CR3: 0x1000}); !errors.Is(err, ErrNoInitTask) {
		t.Errorf("probe through empty tables: %v, want ErrNoInitTask", err)
	}
}

func TestStaleCR3FallsBackToScan(t *testing.T) {
	g := bootGuest(t, paging.FourLevel, 0x2200000, 0x12400000)
	_, p := realKernel(t)
	// a page of zeros: no slide maps init_task through it
	k, err := New(image.NewBytes(g.mem), p, Options{CR3: 0x1000})
	if err != nil {
		t.Fatal(err)
	}
	checkBound(t, k, g, MethodScan)
}

// TestProbeSlideHint: a right hint is taken, a wrong or malformed one
// falls back to probing every candidate.
func TestProbeSlideHint(t *testing.T) {
	g := bootGuest(t, paging.FourLevel, 0x5000000, 0x1c600000)
	r := image.NewBytes(g.mem)
	for _, h := range []slideHint{{g.slide, true}, {g.slide + slideStep, true}, {3, true}, {maxSlide, true}, {}} {
		s, err := probeSlide(paging.New(r, g.cr3, paging.FourLevel), g.l, h)
		if err != nil || s != g.slide {
			t.Errorf("hint %+v: slide %#x, %v; want %#x", h, s, err, g.slide)
		}
	}
}
