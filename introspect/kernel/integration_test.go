package kernel

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
)

// truth is the part of test/fixtures/<name>/truth.json these tests check.
type truth struct {
	KernelRelease string            `json:"kernel_release"`
	CR3           string            `json:"cr3"`
	Symbols       map[string]string `json:"symbols"`
	Memory        *struct {
		File string `json:"file"`
	} `json:"memory"`
}

func realGuests(t *testing.T) []string {
	dirs, _ := filepath.Glob("../../test/fixtures/*/truth.json")
	if len(dirs) == 0 {
		t.Skip("no real-guest fixture (test/fixtures/*/truth.json): run make fixtures")
	}
	return dirs
}

func parseHex(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return v
}

// TestIntegrationRealGuest binds both profiles (from the vmlinuz and from
// the dump alone) to each real-guest dump, both ways (the dump's CR3 and
// the register-free scan), and checks them against the guest's own
// /proc/kallsyms and CR3.
func TestIntegrationRealGuest(t *testing.T) {
	for _, tj := range realGuests(t) {
		t.Run(filepath.Base(filepath.Dir(tj)), func(t *testing.T) {
			raw, err := os.ReadFile(tj)
			if err != nil {
				t.Fatal(err)
			}
			var tr truth
			if err := json.Unmarshal(raw, &tr); err != nil {
				t.Fatal(err)
			}
			if tr.Memory == nil {
				t.Skip("fixture has no memory dump")
			}
			img, err := image.Open(filepath.Join(filepath.Dir(tj), tr.Memory.File))
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			fromFile := fixtureKernelFor(t, tr.KernelRelease)
			fromMem, info, err := profile.FromMemory(img, profile.MemoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !fromMem.Equal(fromFile) {
				t.Errorf("profile from memory %s differs from vmlinuz's %s", fromMem.Fingerprint(), fromFile.Fingerprint())
			}
			cpus := img.CPUs()
			if len(cpus) == 0 || !cpus[0].HasControl {
				t.Fatal("dump has no CPU control registers")
			}
			if want := parseHex(t, tr.CR3); cpus[0].CR3 != want {
				t.Errorf("dump CR3 %#x, truth.json %#x", cpus[0].CR3, want)
			}
			probed, err := New(img, fromFile, Options{})
			if err != nil {
				t.Fatal(err)
			}
			scanned, err := New(img, fromMem, Options{NoCPUState: true})
			if err != nil {
				t.Fatal(err)
			}
			if probed.Method() != MethodProbe || scanned.Method() != MethodScan {
				t.Errorf("methods %s, %s", probed.Method(), scanned.Method())
			}
			if probed.Slide() != scanned.Slide() || probed.Slide() != info.Slide {
				t.Errorf("slides disagree: probe %#x, scan %#x, kallsyms in memory %#x", probed.Slide(), scanned.Slide(), info.Slide)
			}
			if !slices.Contains(paging.KernelCR3Candidates(parseHex(t, tr.CR3)), probed.CR3()) {
				t.Errorf("kernel CR3 %#x from truth %s", probed.CR3(), tr.CR3)
			}
			if probed.PhysBase() != scanned.PhysBase() {
				t.Errorf("phys_base: probe %#x, scan %#x", probed.PhysBase(), scanned.PhysBase())
			}
			for _, k := range []*Kernel{probed, scanned} {
				for _, name := range []string{"init_task", "sys_call_table", "modules", "_text", "_stext", "_etext", "init_top_pgt", "kallsyms_lookup_name"} {
					got, err := k.Symbol(name)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					if w, ok := tr.Symbols[name]; ok && got != parseHex(t, w) {
						t.Errorf("%s (%s) at %#x, guest kallsyms says %s", name, k.Method(), got, w)
					}
				}
				it, _ := k.Symbol("init_task")
				off, _ := k.Offset("task_struct", "comm")
				comm := make([]byte, 16)
				if err := k.ReadVirt([]physmem.Range{{Addr: it + off, Buf: comm}}); err != nil || !bytes.Equal(comm, initComm) {
					t.Errorf("init_task.comm through %s = %q, %v", k.Method(), comm, err)
				}
			}
			t.Logf("release %s slide %#x phys_base %#x cr3 %#x text phys %#x", tr.KernelRelease, probed.Slide(), probed.PhysBase(), probed.CR3(), info.TextPhys)
		})
	}
}

func openRealGuest(b *testing.B) *image.Image {
	b.Helper()
	img, err := image.Open("../../test/fixtures/linux-6.1-clean/memory.elf.zst")
	if err != nil {
		b.Skipf("no real-guest fixture (%v): run make fixtures", err)
	}
	b.Cleanup(func() { img.Close() })
	return img
}

// BenchmarkRealGuestProfileFromMemory is the level-2 profile load from the
// real 256 MiB guest dump (already decompressed).
func BenchmarkRealGuestProfileFromMemory(b *testing.B) {
	img := openRealGuest(b)
	for b.Loop() {
		if _, _, err := profile.FromMemory(img, profile.MemoryOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRealGuestProbe binds with the dump's CR3: the 512-slide probe.
func BenchmarkRealGuestProbe(b *testing.B) {
	img := openRealGuest(b)
	_, p := realKernel(b)
	for b.Loop() {
		if _, err := New(img, p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRealGuestScan binds without registers: the physical scan.
func BenchmarkRealGuestScan(b *testing.B) {
	img := openRealGuest(b)
	_, p := realKernel(b)
	for b.Loop() {
		if _, err := New(img, p, Options{NoCPUState: true}); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	releaseMu       sync.Mutex
	releaseProfiles = map[string]*profile.Profile{}
)

// fixtureKernelFor profiles the committed vmlinuz (test/fixtures/*-vmlinuz)
// whose RELEASE is release.
func fixtureKernelFor(t *testing.T, release string) *profile.Profile {
	t.Helper()
	releaseMu.Lock()
	defer releaseMu.Unlock()
	if p, ok := releaseProfiles[release]; ok {
		return p
	}
	dirs, _ := filepath.Glob("../../test/fixtures/*-vmlinuz")
	for _, d := range dirs {
		rel, err := os.ReadFile(filepath.Join(d, "RELEASE"))
		if err != nil || strings.TrimSpace(string(rel)) != release {
			continue
		}
		p, err := profile.FromVmlinuz(filepath.Join(d, "vmlinuz"))
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		releaseProfiles[release] = p
		return p
	}
	t.Fatalf("no test/fixtures/*-vmlinuz of release %s", release)
	return nil
}
