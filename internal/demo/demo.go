package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/ids"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/kernel"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
	"github.com/vmemtrans/vmemtrans/kvmhost"
)

// Config is what a demo runs. DefaultConfig fills every field.
type Config struct {
	// Image is the guest memory image (the bundled fixture by default).
	Image string
	// Subhosts is how many sub-hosts hold the remote part.
	Subhosts int
	// ResidentPct is the share of guest pages kept on the main host.
	ResidentPct int
	// CacheBytes bounds the adaptive method's page cache.
	CacheBytes int64
	// Patterns are the scan's signatures.
	Patterns [][]byte
	// WorkloadThreads is the number of synthetic vCPUs; each touches
	// WorkloadRate pages a second, 49 in 50 in a hot set of
	// WorkloadHotPages, writing WorkloadWriteRatio of its touches (to the
	// guest's free pages only).
	WorkloadThreads    int
	WorkloadRate       float64
	WorkloadHotPages   int
	WorkloadWriteRatio float64
	// Methods are the split-memory read methods to run, in order. Self
	// paging goes last by default: it is the one that changes the VM (its
	// page-ins push the workload's hot set out, and the workload then
	// faults it back while the next method reads), so the methods that
	// leave the VM alone are compared on the same VM state.
	Methods []fabric.Method
	// Stage is told what the demo is doing, for a progress display.
	Stage func(stage string)
	Log   zerolog.Logger
}

// BundledImage is the fixture a demo reads by default, relative to the
// repository root: a real Debian guest with a rootkit loaded.
const BundledImage = "test/fixtures/linux-6.1-attack/memory.elf.zst"

// DefaultConfig is the demo the README runs: the bundled guest on two
// sub-hosts, a quarter of it resident.
func DefaultConfig() Config {
	return Config{
		Image:              FindBundledImage(),
		Subhosts:           2,
		ResidentPct:        25,
		CacheBytes:         512 << 20,
		Patterns:           [][]byte{[]byte("vmt_hideme"), []byte("rkit")},
		WorkloadThreads:    2,
		WorkloadRate:       5000,
		WorkloadHotPages:   2048,
		WorkloadWriteRatio: 0.3,
		Methods:            []fabric.Method{fabric.MethodProxy, fabric.MethodAdaptive, fabric.MethodSelf},
		Log:                zerolog.Nop(),
	}
}

// FindBundledImage looks for the bundled fixture from the working
// directory up, then beside the executable (bin/ of a checkout).
func FindBundledImage() string {
	var dirs []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(filepath.Dir(exe)))
	}
	for _, d := range dirs {
		p := filepath.Join(d, BundledImage)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return BundledImage
}

// unsplit is the reference: the suite on the image itself.
type unsplit struct {
	img     *image.Image
	prof    *profile.Profile
	kern    *kernel.Kernel
	suite   ids.Suite
	answers ids.Answers
	cpu     image.CPUState
	free    []fabric.GFN
	layout  []fabric.PhysRange
}

func (c *Config) stage(s string) {
	c.Log.Info().Msg(s)
	if c.Stage != nil {
		c.Stage(s)
	}
}

// Run runs the demo. The report is returned even when a run failed; the
// error says what failed.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	cfg.stage("reading the unsplit guest image")
	u, err := openUnsplit(cfg)
	if err != nil {
		return nil, err
	}
	defer u.img.Close()
	rep := &Report{Image: cfg.Image, ResidentPct: cfg.ResidentPct, AllSame: true}
	for _, r := range u.layout {
		rep.GuestMiB += (r.End - r.Start) >> 20
	}
	rep.Findings = Findings{
		Processes: len(u.answers.Processes), Modules: len(u.answers.Modules),
		SyscallHooks: u.answers.SyscallHooks, HiddenTasks: u.answers.HiddenTasks, ScanMatches: len(u.answers.ScanMatches),
	}
	for _, pass := range []string{"first", "repeated"} {
		run := RunResult{Method: "unsplit", Pass: pass, SameAsUnsplit: true}
		a, err := timeSuite(&run, u.suite, u.kern, u.img)
		if err != nil {
			return nil, fmt.Errorf("ids suite on the unsplit image: %w", err)
		}
		if d := u.answers.Diff(a); d != "" {
			return nil, fmt.Errorf("ids suite on the unsplit image is not repeatable: %s", d)
		}
		rep.Runs = append(rep.Runs, run)
	}

	vm, err := startSplitVM(ctx, &cfg, u, rep)
	if err != nil {
		return rep, err
	}
	defer vm.close()

	var errs []error
	for _, m := range cfg.Methods {
		cfg.stage("IDS suite through " + m.String() + " paging")
		if err := vm.runMethod(ctx, cfg, u, m, rep); err != nil {
			errs = append(errs, fmt.Errorf("method %s: %w", m, err))
		}
	}
	rep.Runtime = vm.runtimeSummary()
	rep.WallS = time.Since(start).Seconds()
	for _, r := range rep.Runs {
		rep.AllSame = rep.AllSame && r.SameAsUnsplit
	}
	if !rep.AllSame && len(errs) == 0 {
		errs = append(errs, errors.New("a split-memory run's answers differ from the unsplit image's"))
	}
	return rep, errors.Join(errs...)
}

func openUnsplit(cfg Config) (*unsplit, error) {
	img, err := image.Open(cfg.Image)
	if err != nil {
		return nil, fmt.Errorf("demo guest image: %w (make demo runs from a checkout, which bundles %s)", err, BundledImage)
	}
	u := &unsplit{img: img}
	fail := func(err error) (*unsplit, error) { img.Close(); return nil, err }
	if u.prof, _, err = profile.FromMemory(img, profile.MemoryOptions{}); err != nil {
		return fail(fmt.Errorf("kernel profile of the demo guest: %w", err))
	}
	if u.kern, err = kernel.New(img, u.prof, kernel.Options{}); err != nil {
		return fail(fmt.Errorf("demo guest kernel: %w", err))
	}
	if cpus := img.CPUs(); len(cpus) > 0 {
		u.cpu = cpus[0]
	}
	u.cpu.CR3 = u.kern.CR3()
	u.layout = kvmhost.ImageLayout(img.Extents())
	if u.free, err = kvmhost.FreeGFNs(u.kern, u.layout); err != nil {
		return fail(fmt.Errorf("demo guest: %w", err))
	}
	base, err := linux.HashText(u.kern)
	if err != nil {
		return fail(fmt.Errorf("kernel text baseline: %w", err))
	}
	u.suite = ids.Suite{Baseline: base, Patterns: cfg.Patterns}
	if u.answers, err = u.suite.Run(u.kern, img); err != nil {
		return fail(fmt.Errorf("ids suite on the unsplit image: %w", err))
	}
	return u, nil
}

// timeSuite runs the suite, timing the checks and the scan apart.
func timeSuite(run *RunResult, s ids.Suite, k linux.Target, r physmem.Reader) (ids.Answers, error) {
	t0 := time.Now()
	a, cerr := s.RunChecks(k)
	t1 := time.Now()
	var serr error
	a.ScanMatches, serr = s.RunScan(r)
	t2 := time.Now()
	run.ChecksS, run.ScanS, run.WallS = t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t2.Sub(t0).Seconds()
	return a, errors.Join(cerr, serr)
}

// bindKernel binds the unsplit image's profile (pure, so it serves any
// reader of the same boot) to a split-memory reader with the VM's CR3.
func bindKernel(r physmem.Reader, u *unsplit, cr3, cr4 uint64) (*kernel.Kernel, error) {
	return kernel.New(r, u.prof, kernel.Options{CR3: cr3, Mode: paging.ModeFromCR4(cr4), NoCPUState: true})
}
