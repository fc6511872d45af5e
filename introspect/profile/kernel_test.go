package profile

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

// The tests below run on a real Debian kernel image: the project fixture
// when present, else one fetched by the rig scripts, else $VMT_VMLINUZ.
var (
	kernelOnce    sync.Once
	kernelVmlinux []byte
	kernelProfile *Profile
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

func realKernel(t testing.TB) ([]byte, *Profile) {
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
		if kernelVmlinux, kernelErr = ExtractVmlinux(b); kernelErr == nil {
			kernelProfile, kernelErr = FromVmlinux(kernelVmlinux)
		}
	})
	if kernelErr != nil {
		t.Fatalf("kernel %s: %v", path, kernelErr)
	}
	return kernelVmlinux, kernelProfile
}

func TestFromVmlinuzFindsUnexportedSymbols(t *testing.T) {
	_, p := realKernel(t)
	// none of these is exported: only kallsyms has them
	for _, name := range []string{"init_task", "sys_call_table", "modules", "_stext", "_etext", "init_top_pgt"} {
		a, err := p.Symbol(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if a < KernelMapBase {
			t.Errorf("%s at %#x, outside the kernel map", name, a)
		}
	}
	if s, _ := p.Symbol("_stext"); s != DefaultTextLink {
		t.Errorf("_stext at %#x, want %#x", s, uint64(DefaultTextLink))
	}
	if a, err := p.Symbol("current_task"); err != nil || a >= KernelMapBase {
		t.Errorf("per-cpu current_task = %#x, %v; want a small absolute offset", a, err)
	}
	if _, err := p.Symbol("no_such_symbol_here"); !errors.Is(err, ErrNoSymbol) {
		t.Errorf("missing symbol: %v", err)
	}
	if p.SymbolCount() < 50000 {
		t.Errorf("only %d symbols", p.SymbolCount())
	}
	if name, off, ok := p.Lookup(mustSym(t, p, "init_task") + 8); !ok || name != "init_task" || off != 8 {
		t.Errorf("Lookup(init_task+8) = %s+%d %v", name, off, ok)
	}
}

func mustSym(t testing.TB, p *Profile, name string) uint64 {
	t.Helper()
	a, err := p.Symbol(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTypeLayout(t *testing.T) {
	_, p := realKernel(t)
	off := func(typ, m string) uint64 {
		t.Helper()
		o, err := p.Offset(typ, m)
		if err != nil {
			t.Fatalf("%s.%s: %v", typ, m, err)
		}
		return o
	}
	if p.Release() == "6.1.0-56-amd64" {
		want := map[string]uint64{"tasks": 2192, "mm": 2272, "pid": 2416, "tgid": 2420, "comm": 2976}
		for m, w := range want {
			if got := off("task_struct", m); got != w {
				t.Errorf("task_struct.%s = %d, want %d", m, got, w)
			}
		}
		if sz, _ := p.Size("task_struct"); sz != 9792 {
			t.Errorf("sizeof(task_struct) = %d, want 9792", sz)
		}
	}
	if off("mm_struct", "pgd") == 0 {
		t.Error("mm_struct.pgd (inside an anonymous struct) at 0")
	}
	if off("task_struct", "tasks.prev") != off("task_struct", "tasks")+8 {
		t.Error("tasks.prev is not 8 bytes after tasks")
	}
	if off("task_struct", "pid_links[1]") != off("task_struct", "pid_links")+16 {
		t.Error("pid_links[1] is not one hlist_node after pid_links")
	}
	for _, bad := range []string{"no_such_member", "tasks.", "pid_links[99]", "pid_links[x]", "comm.next"} {
		if _, err := p.Offset("task_struct", bad); !errors.Is(err, ErrNoMember) {
			t.Errorf("Offset(task_struct, %q) err = %v, want ErrNoMember", bad, err)
		}
	}
	if _, err := p.Size("no_such_type_t"); !errors.Is(err, ErrNoType) {
		t.Errorf("Size of a missing type: %v", err)
	}
}

// guestImage lays the kernel's loadable segments out in physical memory at
// textPhys as the boot loader would, and applies the one relocation
// kallsyms needs for a virtual slide (kallsyms_relative_base; 7.x's
// entry-relative tables need none) and init_task.stack.
func guestImage(t testing.TB, vmlinux []byte, textPhys, slide uint64, memSize int) []byte {
	t.Helper()
	f, err := elf.NewFile(bytesReader(vmlinux))
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, memSize)
	linkPhys := uint64(DefaultTextLink - KernelMapBase)
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_LOAD {
			continue
		}
		pa := prog.Paddr - linkPhys + textPhys
		if _, err := prog.ReadAt(mem[pa:pa+prog.Filesz], 0); err != nil {
			t.Fatal(err)
		}
	}
	ro := f.Section(".rodata")
	data, _ := ro.Data()
	tab, err := decodeKallsyms(data, ro.Addr)
	if err != nil {
		t.Fatal(err)
	}
	phys := func(va uint64) uint64 { return va - DefaultTextLink + textPhys }
	if tab.baseAt >= 0 {
		le.PutUint64(mem[phys(ro.Addr+uint64(tab.baseAt)):], tab.relativeBase+slide)
	}
	// init_task.stack points at init_stack, relocated
	p, err := FromVmlinux(vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	task, _ := p.Symbol("init_task")
	stack, _ := p.Symbol("init_stack")
	off, err := p.Offset("task_struct", "stack")
	if err != nil {
		t.Fatal(err)
	}
	le.PutUint64(mem[phys(task+off):], stack+slide)
	return mem
}

func TestFromMemoryEqualsVmlinuz(t *testing.T) {
	vmlinux, want := realKernel(t)
	const textPhys, slide = 0x5000000, 0x1c600000
	mem := guestImage(t, vmlinux, textPhys, slide, 160<<20)
	got, info, err := FromMemory(image.NewBytes(mem), MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Slide != slide || info.TextPhys != textPhys {
		t.Errorf("slide %#x text phys %#x, want %#x %#x", info.Slide, info.TextPhys, slide, textPhys)
	}
	if !got.Equal(want) || got.Fingerprint() != want.Fingerprint() {
		t.Errorf("memory profile %s (%d symbols, %q) differs from vmlinuz profile %s (%d, %q)",
			got.Fingerprint(), got.SymbolCount(), got.Release(), want.Fingerprint(), want.SymbolCount(), want.Release())
	}
	for _, name := range []string{"init_task", "sys_call_table", "modules", "_stext"} {
		if g, w := mustSym(t, got, name), mustSym(t, want, name); g != w {
			t.Errorf("%s: memory %#x, vmlinuz %#x", name, g, w)
		}
	}
	o1, _ := got.Offset("task_struct", "comm")
	o2, _ := want.Offset("task_struct", "comm")
	if o1 != o2 || o1 == 0 {
		t.Errorf("task_struct.comm: memory %d, vmlinuz %d", o1, o2)
	}
}

func TestFromMemoryWithoutKernel(t *testing.T) {
	if _, _, err := FromMemory(image.NewBytes(make([]byte, 1<<20)), MemoryOptions{}); !errors.Is(err, ErrKallsyms) {
		t.Errorf("empty memory: err = %v, want ErrKallsyms", err)
	}
}

func TestExtractVmlinuxRejectsGarbage(t *testing.T) {
	junk := append([]byte("MZ not a kernel"), xzMagic...)
	junk = append(junk, make([]byte, 64)...)
	if _, err := ExtractVmlinux(junk); !errors.Is(err, ErrNoPayload) {
		t.Errorf("err = %v, want ErrNoPayload", err)
	}
	if _, err := FromVmlinux([]byte("\x7fELF short")); !errors.Is(err, ErrNotKernel) {
		t.Errorf("FromVmlinux on a cut ELF: %v", err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	_, p := realKernel(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, typ := range []string{"task_struct", "mm_struct", "module", "list_head"} {
				if _, err := p.Size(typ); err != nil {
					t.Error(err)
				}
			}
			if _, err := p.Offset("module", "list"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// TestEveryFixtureKernel decodes every committed kernel generation from
// its vmlinuz and from a synthetic guest memory holding it (KASLR-slid),
// and both must give the same profile.
func TestEveryFixtureKernel(t *testing.T) {
	dirs, _ := filepath.Glob("../../test/fixtures/linux-*-vmlinuz")
	if len(dirs) == 0 {
		t.Skip("no test/fixtures/linux-*-vmlinuz")
	}
	for _, d := range dirs {
		t.Run(filepath.Base(d), func(t *testing.T) {
			rel, err := os.ReadFile(filepath.Join(d, "RELEASE"))
			if err != nil {
				t.Fatal(err)
			}
			vmlinux, want := fixtureKernel(t, d)
			if want.Release() != strings.TrimSpace(string(rel)) || want.SymbolCount() < 50000 {
				t.Errorf("release %q (%d symbols), RELEASE says %q", want.Release(), want.SymbolCount(), rel)
			}
			const textPhys, slide = 0x7200000, 0x2a400000
			mem := guestImage(t, vmlinux, textPhys, slide, 200<<20)
			got, info, err := FromMemory(image.NewBytes(mem), MemoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Errorf("memory profile %s differs from vmlinuz profile %s", got.Fingerprint(), want.Fingerprint())
			}
			if !info.SlideKnown || info.Slide != slide || info.TextPhys != textPhys {
				t.Errorf("slide %#x (known %v), text phys %#x; want %#x, %#x", info.Slide, info.SlideKnown, info.TextPhys, slide, textPhys)
			}
			// the export table in memory has teeth: symbols 16 bytes off
			// (_text and the section bounds kept) disagree with it
			off := want.byName.syms
			off.ents = slices.Clone(off.ents)
			for i, e := range off.ents {
				if n := off.name(e); !strings.HasPrefix(n, "__st") && n != "_text" {
					off.ents[i].addr += 16
				}
			}
			if err := checkKsymtabInMemory(image.NewBytes(mem), textPhys, newSymIndex(want.byName.syms)); err != nil {
				t.Errorf("true symbols: %v", err)
			}
			if err := checkKsymtabInMemory(image.NewBytes(mem), textPhys, newSymIndex(off)); !errors.Is(err, ErrMismatch) {
				t.Errorf("shifted symbols: err = %v, want ErrMismatch", err)
			}
		})
	}
}

// putVmcoreinfo writes, at physical address at, the VMCOREINFO text a
// kernel laid out by guestImage would have: its kallsyms tables at their
// runtime addresses, phys_base and KERNELOFFSET.
func putVmcoreinfo(t testing.TB, mem []byte, at uint64, vmlinux []byte, textPhys, slide uint64) {
	t.Helper()
	f, err := elf.NewFile(bytesReader(vmlinux))
	if err != nil {
		t.Fatal(err)
	}
	ro := f.Section(".rodata")
	data, _ := ro.Data()
	tab, err := decodeKallsyms(data, ro.Addr)
	if err != nil {
		t.Fatal(err)
	}
	rt := func(off int) uint64 { return ro.Addr + uint64(off) + slide }
	physBase := int64(textPhys - (DefaultTextLink + slide - KernelMapBase))
	var b strings.Builder
	fmt.Fprintf(&b, "OSRELEASE=x\nPAGESIZE=4096\nSYMBOL(kallsyms_names)=%x\nSYMBOL(kallsyms_num_syms)=%x\n", rt(tab.names), rt(tab.numSyms))
	fmt.Fprintf(&b, "SYMBOL(kallsyms_token_table)=%x\nSYMBOL(kallsyms_token_index)=%x\n", rt(tab.tokenTable), rt(tab.tokenIndex))
	if tab.kind == addrAbsolute {
		fmt.Fprintf(&b, "SYMBOL(kallsyms_addresses)=%x\n", rt(tab.addrs))
	} else {
		fmt.Fprintf(&b, "SYMBOL(kallsyms_offsets)=%x\n", rt(tab.addrs))
	}
	if tab.baseAt >= 0 {
		fmt.Fprintf(&b, "SYMBOL(kallsyms_relative_base)=%x\n", rt(tab.baseAt))
	}
	fmt.Fprintf(&b, "NUMBER(phys_base)=%d\nKERNELOFFSET=%x\n", physBase, slide)
	copy(mem[at:], b.String())
}

// TestFromMemoryPrefersVmcoreinfo: with VMCOREINFO in memory (below the
// kernel image, so the scan meets it first) the tables are read where it
// says; a VMCOREINFO that points elsewhere is rejected and the signature
// scan still finds them.
func TestFromMemoryPrefersVmcoreinfo(t *testing.T) {
	dirs, _ := filepath.Glob("../../test/fixtures/linux-*-vmlinuz")
	if len(dirs) == 0 {
		t.Skip("no test/fixtures/linux-*-vmlinuz")
	}
	for _, d := range dirs {
		t.Run(filepath.Base(d), func(t *testing.T) {
			vmlinux, want := fixtureKernel(t, d)
			const textPhys, slide = 0x9000000, 0x13e00000
			mem := guestImage(t, vmlinux, textPhys, slide, 240<<20)
			putVmcoreinfo(t, mem, 0x1234000, vmlinux, textPhys, slide)
			got, info, err := FromMemory(image.NewBytes(mem), MemoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Source != SourceVmcoreinfo || !got.Equal(want) || info.Slide != slide || info.TextPhys != textPhys {
				t.Errorf("source %s, slide %#x, text %#x, same profile %v", info.Source, info.Slide, info.TextPhys, got.Equal(want))
			}
			// the same VMCOREINFO for a kernel 2 MiB further on
			putVmcoreinfo(t, mem, 0x1234000, vmlinux, textPhys+imageAlign, slide)
			got, info, err = FromMemory(image.NewBytes(mem), MemoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Source != SourceScan || !got.Equal(want) || info.Slide != slide {
				t.Errorf("wrong vmcoreinfo: source %s, slide %#x, same profile %v", info.Source, info.Slide, got.Equal(want))
			}
		})
	}
}

var fixtureKernels sync.Map // dir -> *fixtureKernelEntry

type fixtureKernelEntry struct {
	once    sync.Once
	vmlinux []byte
	p       *Profile
	err     error
}

// fixtureKernel unpacks and profiles test/fixtures/DIR/vmlinuz once per
// test binary.
func fixtureKernel(t testing.TB, dir string) ([]byte, *Profile) {
	t.Helper()
	v, _ := fixtureKernels.LoadOrStore(dir, &fixtureKernelEntry{})
	e := v.(*fixtureKernelEntry)
	e.once.Do(func() {
		var raw []byte
		if raw, e.err = os.ReadFile(filepath.Join(dir, "vmlinuz")); e.err != nil {
			return
		}
		if e.vmlinux, e.err = ExtractVmlinux(raw); e.err == nil {
			e.p, e.err = FromVmlinux(e.vmlinux)
		}
	})
	if e.err != nil {
		t.Fatalf("%s: %v", dir, e.err)
	}
	return e.vmlinux, e.p
}

// TestFromMemoryLentWithRetries: memory lent whole but every piece first
// shown wrong and then again, right, gives the same profile as memory
// read plainly, through VMCOREINFO and through the scan; so does memory
// lent in small pieces (read by copy).
func TestFromMemoryLentWithRetries(t *testing.T) {
	vmlinux, want := realKernel(t)
	const textPhys, slide = 0x9000000, 0x13e00000
	mem := guestImage(t, vmlinux, textPhys, slide, 240<<20)
	for _, vmcoreinfo := range []bool{false, true} {
		if vmcoreinfo {
			putVmcoreinfo(t, mem, 0x1234000, vmlinux, textPhys, slide)
		}
		for name, r := range map[string]physmem.Reader{
			"retried": &physmemtest.Choppy{R: image.NewBytes(mem), Max: 1 << 30, RetryEvery: 1, Seed: 3},
			"pieces":  &physmemtest.Choppy{R: image.NewBytes(mem), Max: 100000, Seed: 4},
		} {
			got, info, err := FromMemory(r, MemoryOptions{})
			if err != nil {
				t.Fatalf("%s (vmcoreinfo %v): %v", name, vmcoreinfo, err)
			}
			if !got.Equal(want) || info.Slide != slide || info.TextPhys != textPhys {
				t.Errorf("%s (vmcoreinfo %v): source %s, slide %#x, text %#x, same profile %v", name, vmcoreinfo, info.Source, info.Slide, info.TextPhys, got.Equal(want))
			}
		}
	}
}
