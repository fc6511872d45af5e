package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/kernel"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
	"github.com/vmemtrans/vmemtrans/introspect/source"
)

// End-to-end tests of the Linux walkers and IDS checks on the committed
// real-guest fixtures (test/fixtures, made by make fixtures): what the
// walkers read from memory must equal what the guest itself reported.

const fixtureVmlinuz = "fixtures/linux-6.1-vmlinuz/vmlinuz"

// fixtureGen is one kernel generation's fixtures: a clean dump, an attack
// dump where the test rootkit builds for that kernel, and the vmlinuz.
type fixtureGen struct {
	gen     string // "6.1", "6.12", "7.x", "6.12-rt", "6.12-la57"
	clean   string
	attack  string // "" if none
	vmlinuz string
}

// fixtureGens lists the committed generations (linux-GEN-clean), 6.1 first.
func fixtureGens(tb testing.TB) []fixtureGen {
	tb.Helper()
	dirs, _ := filepath.Glob(filepath.Join("fixtures", "linux-*-clean"))
	if len(dirs) == 0 {
		tb.Skip("no fixtures in test/fixtures: run make fixtures")
	}
	var out []fixtureGen
	for _, d := range dirs {
		name := filepath.Base(d)
		gen := strings.TrimSuffix(strings.TrimPrefix(name, "linux-"), "-clean")
		g := fixtureGen{gen: gen, clean: name,
			vmlinuz: fixturePath("linux-"+strings.TrimSuffix(gen, "-la57")+"-vmlinuz", "vmlinuz")}
		if _, err := os.Stat(fixturePath("linux-"+gen+"-attack", "truth.json")); err == nil {
			g.attack = "linux-" + gen + "-attack"
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gen == "6.1" || out[i].gen < out[j].gen && out[j].gen != "6.1" })
	return out
}

// fixtureNames lists every fixture dump (clean and attack) of every generation.
func fixtureNames(tb testing.TB) []string {
	var out []string
	for _, g := range fixtureGens(tb) {
		out = append(out, g.clean)
		if g.attack != "" {
			out = append(out, g.attack)
		}
	}
	return out
}

// fixtureGenOf is the generation of fixture name ("linux-6.12-clean": "6.12").
func fixtureGenOf(name string) string {
	gen := strings.TrimPrefix(name, "linux-")
	for _, suffix := range []string{"-clean", "-attack"} {
		gen = strings.TrimSuffix(gen, suffix)
	}
	return gen
}

// kernelLineOf is the kernel version line of fixture name, whatever its
// build or vCPU ("linux-6.12-rt-attack", "linux-6.12-la57-clean": "6.12").
func kernelLineOf(name string) string {
	gen := fixtureGenOf(name)
	for _, suffix := range []string{"-la57", "-rt"} {
		gen = strings.TrimSuffix(gen, suffix)
	}
	return gen
}

// vmlinuzOf is the kernel image of fixture name's generation.
func vmlinuzOf(name string) string {
	return fixturePath("linux-"+strings.TrimSuffix(fixtureGenOf(name), "-la57")+"-vmlinuz", "vmlinuz")
}

// fixtureTruth is the part of truth.json these tests compare with.
type fixtureTruth struct {
	Processes []struct {
		PID  int    `json:"pid"`
		TGID int    `json:"tgid"`
		PPID int    `json:"ppid"`
		UID  int    `json:"uid"`
		Comm string `json:"comm"`
	} `json:"processes"`
	Modules []struct {
		Name string `json:"name"`
		Size uint64 `json:"size"`
	} `json:"modules"`
	Attack *struct {
		HiddenPID       int    `json:"hidden_pid"`
		HiddenComm      string `json:"hidden_comm"`
		HookedSyscallNr int    `json:"hooked_syscall_nr"`
		Module          string `json:"module"`
	} `json:"attack"`
}

type fixture struct {
	name  string
	img   *image.Image
	truth *fixtureTruth
}

var (
	fixtureMu    sync.Mutex
	fixtureCache = map[string]*fixture{}
	profileCache = map[string]*profile.Profile{}
)

func fixturePath(name, file string) string { return filepath.Join("fixtures", name, file) }

// loadFixture opens a fixture once per test binary.
func loadFixture(tb testing.TB, name string) *fixture {
	tb.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if f, ok := fixtureCache[name]; ok {
		return f
	}
	mem, truthFile := fixturePath(name, "memory.elf.zst"), fixturePath(name, "truth.json")
	for _, p := range []string{mem, truthFile} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			tb.Skipf("fixture not present (%s): run make fixtures", p)
		}
	}
	data, err := os.ReadFile(truthFile)
	if err != nil {
		tb.Fatal(err)
	}
	var truth fixtureTruth
	if err := json.Unmarshal(data, &truth); err != nil {
		tb.Fatalf("%s: %v", truthFile, err)
	}
	img, err := image.Open(mem)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{name: name, img: img, truth: &truth}
	fixtureCache[name] = f
	return f
}

// fixtureProfile is the kernel profile at level 1 (from the vmlinuz) or
// level 2 (from the guest memory alone).
func fixtureProfile(tb testing.TB, f *fixture, level int) *profile.Profile {
	tb.Helper()
	key := fmt.Sprint(f.name, level)
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if p, ok := profileCache[key]; ok {
		return p
	}
	var p *profile.Profile
	var err error
	switch level {
	case 1:
		vmlinuz := vmlinuzOf(f.name)
		if _, serr := os.Stat(vmlinuz); errors.Is(serr, os.ErrNotExist) {
			tb.Skipf("fixture not present (%s): run make fixtures", vmlinuz)
		}
		p, err = profile.FromVmlinuz(vmlinuz)
	default:
		var info profile.MemoryInfo
		p, info, err = profile.FromMemory(f.img, profile.MemoryOptions{})
		if err == nil && info.Source != profile.SourceVmcoreinfo {
			// every Debian kernel since 6.0 names its kallsyms in VMCOREINFO
			tb.Errorf("%s: kallsyms found by %s, not where VMCOREINFO says", f.name, info.Source)
		}
	}
	if err != nil {
		tb.Fatalf("%s level %d profile: %v", f.name, level, err)
	}
	profileCache[key] = p
	return p
}

func fixtureKernel(tb testing.TB, name string, level int) (*fixture, *kernel.Kernel) {
	tb.Helper()
	f := loadFixture(tb, name)
	k, err := kernel.New(f.img, fixtureProfile(tb, f, level), kernel.Options{})
	if err != nil {
		tb.Fatalf("%s: bind kernel: %v", name, err)
	}
	return f, k
}

type taskKey struct {
	pid, ppid int
	comm      string
}

func diffSets[K comparable](got, want map[K]bool) (missing, extra []K) {
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	return missing, extra
}

// splitWorkers separates workqueue workers (kworker/N:M, not the
// long-lived rescuers kworker/R-*) from the other tasks.
func splitWorkers(ks []taskKey) (others, workers []taskKey) {
	for _, k := range ks {
		if strings.HasPrefix(k.comm, "kworker/") && !strings.HasPrefix(k.comm, "kworker/R-") {
			workers = append(workers, k)
		} else {
			others = append(others, k)
		}
	}
	return others, workers
}

// hiddenByAttack tells whether truth task (pid, tgid) is the one the
// rootkit hid (or a thread of it).
func hiddenByAttack(f *fixture, pid, tgid int) bool {
	a := f.truth.Attack
	return a != nil && (pid == a.HiddenPID || tgid == a.HiddenPID)
}

func TestFixturePs(t *testing.T) {
	for _, name := range fixtureNames(t) {
		for _, level := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/level%d", name, level), func(t *testing.T) {
				f, k := fixtureKernel(t, name, level)
				tasks, err := linux.Tasks(k, linux.Options{Threads: true})
				if err != nil {
					t.Fatal(err)
				}
				got, want := map[taskKey]bool{}, map[taskKey]bool{}
				uids := map[int]int{}
				for _, tk := range tasks {
					if tk.Err != nil {
						t.Errorf("task %d: %v", tk.PID, tk.Err)
					}
					if tk.PID != 0 { // the idle task has no /proc entry
						got[taskKey{int(tk.PID), int(tk.PPID), tk.Comm}] = true
						uids[int(tk.PID)] = int(tk.UID)
					}
				}
				for _, p := range f.truth.Processes {
					if hiddenByAttack(f, p.PID, p.TGID) {
						continue
					}
					want[taskKey{p.PID, p.PPID, p.Comm}] = true
					if u, ok := uids[p.PID]; ok && u != p.UID {
						t.Errorf("pid %d: uid %d, truth %d", p.PID, u, p.UID)
					}
				}
				missing, extra := diffSets(got, want)
				// A kworker may exit or start between the guest's printout and
				// the dump (the guest runs on meanwhile): a few are noted, not
				// failed; every other task must match exactly.
				missing, mk := splitWorkers(missing)
				extra, ek := splitWorkers(extra)
				if len(mk) > 0 || len(ek) > 0 {
					t.Logf("workqueue workers that came or went before the dump: %v gone, %v new", mk, ek)
				}
				if len(missing)+len(extra) > 0 || len(mk) > 2 || len(ek) > 2 {
					t.Errorf("ps differs from the guest's own view: missing %v, extra %v (workers %v, %v)", missing, extra, mk, ek)
				}
				t.Logf("%d tasks (threads included) equal the guest's", len(got))
			})
		}
	}
}

func TestFixtureLsmod(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			f, k := fixtureKernel(t, name, 2)
			mods, err := linux.Modules(k, linux.Options{})
			if err != nil {
				t.Fatal(err)
			}
			type mod struct {
				name string
				size uint64
			}
			got, want := map[mod]bool{}, map[mod]bool{}
			for _, m := range mods {
				got[mod{m.Name, m.Size}] = true
			}
			for _, m := range f.truth.Modules {
				want[mod{m.Name, m.Size}] = true
			}
			if missing, extra := diffSets(got, want); len(missing)+len(extra) > 0 {
				t.Errorf("lsmod differs from /proc/modules: missing %v, extra %v", missing, extra)
			}
		})
	}
}

func TestFixtureChecksClean(t *testing.T) {
	for _, g := range fixtureGens(t) {
		for _, level := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/level%d", g.clean, level), func(t *testing.T) {
				checkClean(t, g.clean, level)
			})
		}
	}
}

func checkClean(t *testing.T, name string, level int) {
	_, k := fixtureKernel(t, name, level)
	rep, err := linux.CheckSyscalls(k, linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// __NR_syscalls grows with the kernel: 451 on 6.1, 463 on 6.12
	want := map[string]int{"6.1": linux.DefaultSyscalls, "6.12": 463}[kernelLineOf(name)]
	if len(rep.Hooks) != 0 || rep.Entries < linux.DefaultSyscalls || want != 0 && rep.Entries != want {
		t.Errorf("clean guest: %d entries, hooks %+v; want %d entries (0: at least %d), none", rep.Entries, rep.Hooks, want, linux.DefaultSyscalls)
	}
	hid, err := linux.HiddenTasks(k, linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hid.Hidden) != 0 || hid.InIDR == 0 {
		t.Errorf("clean guest: %d in the IDR, hidden %+v; want none hidden", hid.InIDR, hid.Hidden)
	}
}

func TestFixtureChecksAttack(t *testing.T) {
	for _, g := range fixtureGens(t) {
		if g.attack == "" {
			continue
		}
		for _, level := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/level%d", g.attack, level), func(t *testing.T) {
				checkAttack(t, g.attack, level)
			})
		}
	}
}

func checkAttack(t *testing.T, name string, level int) {
	f, k := fixtureKernel(t, name, level)
	a := f.truth.Attack
	if a == nil {
		t.Fatal("attack fixture's truth.json has no attack")
	}
	hid, err := linux.HiddenTasks(k, linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hid.Hidden) == 0 || int(hid.Hidden[0].PID) != a.HiddenPID || hid.Hidden[0].Comm != a.HiddenComm {
		t.Errorf("hidden %+v; want pid %d %q", hid.Hidden, a.HiddenPID, a.HiddenComm)
	}
	for _, h := range hid.Hidden {
		if int(h.TGID) != a.HiddenPID {
			t.Errorf("task %d (tgid %d) reported hidden, not of the hidden process", h.PID, h.TGID)
		}
	}
	rep, err := linux.CheckSyscalls(k, linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Hooks) != 1 || rep.Hooks[0].NR != a.HookedSyscallNr || rep.Hooks[0].Module != a.Module {
		t.Errorf("hooks %+v; want nr %d owned by %s", rep.Hooks, a.HookedSyscallNr, a.Module)
	}
}

// TestFixtureKernelText records each clean guest's text hashes and
// compares the same boot's later (attacked) state with them: the baseline
// must be accepted as the same boot, and the clean guest must match itself.
func TestFixtureKernelText(t *testing.T) {
	for _, g := range fixtureGens(t) {
		t.Run(g.gen, func(t *testing.T) {
			_, clean := fixtureKernel(t, g.clean, 1)
			base, err := linux.HashText(clean)
			if err != nil {
				t.Fatal(err)
			}
			if len(base.Pages) < 256 {
				t.Fatalf("%d kernel text pages: implausibly few", len(base.Pages))
			}
			again, _ := linux.HashText(clean)
			if ch, err := linux.CompareText(base, again); err != nil || len(ch) != 0 {
				t.Fatalf("clean vs itself: changes %v, err %v", ch, err)
			}
			if g.attack == "" {
				return
			}
			_, attacked := fixtureKernel(t, g.attack, 1)
			later, err := linux.HashText(attacked)
			if err != nil {
				t.Fatal(err)
			}
			ch, err := linux.CompareText(base, later)
			if err != nil {
				t.Fatalf("same boot refused: %v", err)
			}
			// The rootkit patches no text; static keys and kprobes the module
			// load toggled may legitimately have.
			t.Logf("%d of %d text pages differ between the clean and attacked states", len(ch), len(base.Pages))
		})
	}
}

// TestFixtureCLI runs the built vmemtrans on every generation, from memory
// alone and with --vmlinuz: ps --json's shape, and the commands' exit
// codes (0 clean, 2 findings).
func TestFixtureCLI(t *testing.T) {
	gens := fixtureGens(t)
	bin := filepath.Join(t.TempDir(), "vmemtrans")
	build := exec.Command("go", "build", "-o", bin, "../cmd/vmemtrans")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(t *testing.T, args ...string) ([]byte, int) {
		cmd := exec.Command(bin, args...)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out, ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out, 0
	}
	for _, g := range gens {
		for _, withVmlinuz := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/vmlinuz=%v", g.gen, withVmlinuz), func(t *testing.T) {
				src := func(name string) []string {
					a := []string{"--image", fixturePath(name, "memory.elf.zst")}
					if withVmlinuz {
						a = append(a, "--vmlinuz", g.vmlinuz)
					}
					return a
				}
				out, code := run(t, append([]string{"ps", "--json", "--threads"}, src(g.clean)...)...)
				if code != 0 {
					t.Fatalf("ps exit %d: %s", code, out)
				}
				var rows []map[string]any
				if err := json.Unmarshal(out, &rows); err != nil || len(rows) < 2 {
					t.Fatalf("ps --json: %v, %d rows", err, len(rows))
				}
				for _, key := range []string{"pid", "tgid", "ppid", "uid", "comm", "task"} {
					if _, ok := rows[1][key]; !ok {
						t.Errorf("ps --json row lacks %q: %v", key, rows[1])
					}
				}
				if rows[1]["comm"] == "" || rows[0]["comm"] != "swapper/0" {
					t.Errorf("first rows %v %v", rows[0], rows[1])
				}
				for _, c := range [][]string{{"lsmod"}, {"check", "syscalls"}, {"check", "hidden-tasks"},
					{"check", "kernel-text", "--record", filepath.Join(t.TempDir(), "text.json")}} {
					if out, code = run(t, append(c, src(g.clean)...)...); code != 0 {
						t.Errorf("%v on the clean guest: exit %d\n%s", c, code, out)
					}
				}
				if g.attack == "" {
					return
				}
				if out, code = run(t, append([]string{"check", "hidden-tasks"}, src(g.attack)...)...); code != 2 {
					t.Errorf("check hidden-tasks on the attacked guest: exit %d, want 2\n%s", code, out)
				}
				if out, code = run(t, append([]string{"check", "syscalls", "--json"}, src(g.attack)...)...); code != 2 {
					t.Errorf("check syscalls on the attacked guest: exit %d, want 2\n%s", code, out)
				}
				var rep linux.SyscallReport
				if err := json.Unmarshal(out, &rep); err != nil || len(rep.Hooks) != 1 {
					t.Errorf("check syscalls --json: %v %+v", err, rep)
				}
			})
		}
	}
}

// countingReader counts the physical reads a walk issues: batches, ranges
// and distinct pages. It keeps the wrapped image's CPU state visible.
type countingReader struct {
	*image.Image
	mu      sync.Mutex
	batches int
	ranges  int
	pages   map[uint64]struct{}
}

func (c *countingReader) ReadPhys(rs []physmem.Range) error {
	c.mu.Lock()
	c.batches++
	c.ranges += len(rs)
	for _, r := range rs {
		for p := r.Addr >> 12; p <= (r.Addr+uint64(len(r.Buf))-1)>>12 && len(r.Buf) > 0; p++ {
			c.pages[p] = struct{}{}
		}
	}
	c.mu.Unlock()
	return c.Image.ReadPhys(rs)
}

// BenchmarkFixturePs is ps (leaders) on a freshly bound kernel: the walk
// alone, profile loaded and kernel bound outside the timer, translation
// cache cold. It reports the physical pages, batches and ranges one ps
// reads (page-table pages included).
func BenchmarkFixturePs(b *testing.B) {
	f := loadFixture(b, "linux-6.1-clean")
	prof := fixtureProfile(b, f, 1)
	var last *countingReader
	var n int
	for b.Loop() {
		b.StopTimer()
		cr := &countingReader{Image: f.img, pages: map[uint64]struct{}{}}
		k, err := kernel.New(cr, prof, kernel.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cr.batches, cr.ranges, cr.pages = 0, 0, map[uint64]struct{}{} // count the walk, not the binding
		b.StartTimer()
		tasks, err := linux.Tasks(k, linux.Options{})
		if err != nil {
			b.Fatal(err)
		}
		last, n = cr, len(tasks)
	}
	b.ReportMetric(float64(len(last.pages)), "pages/ps")
	b.ReportMetric(float64(last.batches), "batches/ps")
	b.ReportMetric(float64(last.ranges), "ranges/ps")
	b.ReportMetric(float64(n), "tasks")
}

// BenchmarkFixturePsWarm is repeated ps on one bound kernel (translation
// cache warm), as an IDS that scans again and again.
func BenchmarkFixturePsWarm(b *testing.B) {
	_, k := fixtureKernel(b, "linux-6.1-clean", 1)
	for b.Loop() {
		if _, err := linux.Tasks(k, linux.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// noIDR hides init_pid_ns, so Tasks cannot prefetch from the PID IDR and
// reads each task as it follows the list.
type noIDR struct{ *kernel.Kernel }

func (n noIDR) Symbol(name string) (uint64, error) {
	if name == "init_pid_ns" {
		return 0, errors.New("hidden for the benchmark")
	}
	return n.Kernel.Symbol(name)
}

// BenchmarkFixturePsRemote is ps (translation cache cold) when every
// physical batch costs a round trip (physmem.WithLatency, 20 µs asked; the
// sleep's real granularity on a loaded host is coarser), as over a memory
// fabric: round trips, not bytes, set the time. "list-only" reads each task
// as the list reaches it; "idr-prefetch" is what Tasks does.
func BenchmarkFixturePsRemote(b *testing.B) {
	f := loadFixture(b, "linux-6.1-clean")
	prof := fixtureProfile(b, f, 1)
	cpus := f.img.CPUs()
	if len(cpus) == 0 || !cpus[0].HasControl {
		b.Fatal("fixture dump carries no CR3")
	}
	for _, mode := range []string{"idr-prefetch", "list-only"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				k, err := kernel.New(physmem.WithLatency(f.img, 20*time.Microsecond), prof, kernel.Options{CR3: cpus[0].CR3})
				if err != nil {
					b.Fatal(err)
				}
				var tgt linux.Target = k
				if mode == "list-only" {
					tgt = noIDR{k}
				}
				b.StartTimer()
				if _, err := linux.Tasks(tgt, linux.Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFixturePsCold is ps from nothing but the opened image: profile
// from the vmlinuz (level 1) or from memory (level 2), kernel bound, walk.
func BenchmarkFixturePsCold(b *testing.B) {
	for _, level := range []int{1, 2} {
		b.Run(fmt.Sprint("level", level), func(b *testing.B) {
			f := loadFixture(b, "linux-6.1-clean")
			if level == 1 {
				if _, err := os.Stat(fixtureVmlinuz); err != nil {
					b.Skipf("fixture not present (%s): run make fixtures", fixtureVmlinuz)
				}
			}
			var profTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				var p *profile.Profile
				var err error
				if level == 1 {
					p, err = profile.FromVmlinuz(fixtureVmlinuz)
				} else {
					p, _, err = profile.FromMemory(f.img, profile.MemoryOptions{})
				}
				if err != nil {
					b.Fatal(err)
				}
				profTime += time.Since(t0)
				k, err := kernel.New(f.img, p, kernel.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := linux.Tasks(k, linux.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(profTime.Milliseconds())/float64(b.N), "profile-ms/op")
		})
	}
}

// TestFixturePagingMode: the LA57 guest's dump says 5-level paging (CR4)
// and the kernel is walked with 5 levels, also when found without the
// registers (scan, both depths tried); every other guest uses 4.
func TestFixturePagingMode(t *testing.T) {
	for _, g := range fixtureGens(t) {
		t.Run(g.gen, func(t *testing.T) {
			want := paging.FourLevel
			if strings.HasSuffix(g.gen, "-la57") {
				want = paging.FiveLevel
			}
			f, k := fixtureKernel(t, g.clean, 2)
			cpus := f.img.CPUs()
			if len(cpus) == 0 || !cpus[0].HasControl {
				t.Fatal("dump carries no control registers")
			}
			if m := paging.ModeFromCR4(cpus[0].CR4); m != want {
				t.Errorf("CR4 %#x gives %d-level paging, want %d", cpus[0].CR4, m, want)
			}
			if m := k.Translator().Mode(); m != want {
				t.Errorf("bound with %d-level paging, want %d", m, want)
			}
			scanned, err := kernel.New(f.img, k.Profile(), kernel.Options{NoCPUState: true})
			if err != nil {
				t.Fatal(err)
			}
			if m := scanned.Translator().Mode(); m != want || scanned.Slide() != k.Slide() {
				t.Errorf("without registers: %d-level, slide %#x; want %d, %#x", m, scanned.Slide(), want, k.Slide())
			}
		})
	}
}

// BenchmarkFixturePsGenerations is ps from the compressed dump alone, as
// `vmemtrans ps --image` runs it (decompress, profile from memory, bind,
// walk), on every kernel generation's clean fixture in turn within each
// op, so the machine's noise falls on all alike. It reports each
// generation's median milliseconds and its ratio to 6.1's (issue: a newer
// kernel costs no more than 6.1).
func BenchmarkFixturePsGenerations(b *testing.B) {
	gens := fixtureGens(b)
	times := make([][]time.Duration, len(gens))
	for b.Loop() {
		for i, g := range gens {
			t0 := time.Now()
			s, err := source.Open(context.Background(), source.Spec{Image: fixturePath(g.clean, "memory.elf.zst")})
			if err != nil {
				b.Fatalf("%s: %v", g.clean, err)
			}
			if _, err := linux.Tasks(s.Kernel, linux.Options{}); err != nil {
				b.Fatalf("%s: %v", g.clean, err)
			}
			s.Close()
			times[i] = append(times[i], time.Since(t0))
		}
	}
	median := func(d []time.Duration) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	base := median(times[0])
	for i, g := range gens {
		m := median(times[i])
		b.ReportMetric(m, g.gen+"-ms")
		if i > 0 {
			b.ReportMetric(m/base, g.gen+"/6.1")
		}
	}
}
