package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/kvmhost/attach"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// demoVM is the id the demo VM has on its sub-hosts.
const demoVM = "demo-vm"

// splitVM is the running split-memory VM: sub-hosts, runtime, socket.
type splitVM struct {
	subhosts []*controltest.Subhost
	trans    []fabric.Transport
	rt       *kvmhost.Runtime
	srv      *vmsock.Server
	ln       *vmsock.Listener
	dir      string
	socket   string
	info     vmsock.VMInfo
}

func startSplitVM(ctx context.Context, cfg *Config, u *unsplit, rep *Report) (vm *splitVM, err error) {
	vm = &splitVM{}
	defer func() {
		if err != nil {
			vm.close()
		}
	}()
	cfg.stage(fmt.Sprintf("starting %d sub-hosts on loopback", cfg.Subhosts))
	vm.info = vmsock.VMInfo{VM: demoVM, Layout: u.layout, CR3: u.cpu.CR3, CR4: u.cpu.CR4, RAMSize: u.layout[len(u.layout)-1].End}
	for i := 0; i < cfg.Subhosts; i++ {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		keys, err := control.NewKeyring(map[string][]byte{demoVM: key})
		if err != nil {
			return nil, err
		}
		s, err := controltest.New(keys)
		if err != nil {
			return nil, fmt.Errorf("demo sub-host %d: %w", i, err)
		}
		vm.subhosts = append(vm.subhosts, s)
		slots := kvmhost.SlotsNeeded(u.layout, cfg.Subhosts)
		t, err := tcpfallback.Dial(ctx, s.Addr, demoVM, key, tcpfallback.Options{Slots: slots})
		if err != nil {
			return nil, fmt.Errorf("demo sub-host %d: %w", i, err)
		}
		vm.trans = append(vm.trans, t)
		vm.info.Subhosts = append(vm.info.Subhosts, vmsock.Subhost{ID: uint8(i), Addr: s.Addr, VM: demoVM, Key: key})
		rep.Subhosts = append(rep.Subhosts, s.Addr)
		rep.Transport = t.Kind()
	}
	cfg.stage(fmt.Sprintf("split-migrating %d MiB: %d%% resident, the rest to the sub-hosts", rep.GuestMiB, cfg.ResidentPct))
	t0 := time.Now()
	vm.rt, err = kvmhost.New(ctx, kvmhost.Config{
		Memory:      u.img,
		Layout:      u.layout,
		Subhosts:    vm.trans,
		ResidentPct: cfg.ResidentPct,
		Workload: kvmhost.WorkloadConfig{
			Threads:      cfg.WorkloadThreads,
			HotSetPages:  cfg.WorkloadHotPages,
			HotFraction:  0.98,
			WriteRatio:   cfg.WorkloadWriteRatio,
			Rate:         cfg.WorkloadRate,
			WritableGFNs: u.free,
		},
		Log: cfg.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("split-memory runtime: %w", err)
	}
	rep.SplitS = time.Since(t0).Seconds()
	if err := vm.rt.Start(ctx); err != nil {
		return nil, fmt.Errorf("split-memory runtime: %w", err)
	}
	if vm.dir, err = os.MkdirTemp("", "vmemtrans-demo-"); err != nil {
		return nil, err
	}
	vm.socket = filepath.Join(vm.dir, "vm.sock")
	if vm.ln, err = vmsock.Listen(vm.socket); err != nil {
		return nil, err
	}
	if vm.srv, err = vmsock.NewServer(vmsock.ServerConfig{Backend: vmsock.RuntimeBackend{Runtime: vm.rt, VM: vm.info}, Log: cfg.Log}); err != nil {
		return nil, err
	}
	go func() { _ = vm.srv.Serve(vm.ln) }()
	return vm, nil
}

// dial connects to a sub-host as an IDS does, with the handed-over key.
func dial(ctx context.Context, s vmsock.Subhost) (fabric.Transport, error) {
	return tcpfallback.Dial(ctx, s.Addr, s.VM, s.Key, tcpfallback.Options{})
}

// runMethod attaches an IDS by method m and runs the suite twice.
func (vm *splitVM) runMethod(ctx context.Context, cfg Config, u *unsplit, m fabric.Method, rep *Report) error {
	a, err := attach.Attach(ctx, vm.socket, attach.Options{Method: m, CacheBytes: cfg.CacheBytes, Dial: dial})
	if err != nil {
		return err
	}
	defer a.Close()
	k, err := bindKernel(a, u, a.Info.CR3, a.Info.CR4)
	if err != nil {
		return fmt.Errorf("guest kernel through %s paging: %w", m, err)
	}
	var errs []error
	for _, pass := range []string{"first", "repeated"} {
		run := RunResult{Method: m.String(), Pass: pass}
		before, rsBefore := a.Stats(), vm.rt.Stats().ResidentPages
		got, err := timeSuite(&run, u.suite, k, a)
		after, rsAfter := a.Stats(), vm.rt.Stats().ResidentPages
		run.RemotePagesFetched = after.RemotePagesFetched - before.RemotePagesFetched
		run.PagesExchanged = after.PagesExchanged - before.PagesExchanged
		run.CacheHits = after.CacheHits - before.CacheHits
		run.LocalPages = after.LocalPages - before.LocalPages
		run.ResidentBefore, run.ResidentAfter = rsBefore, rsAfter
		run.ResidentDelta = int64(rsAfter) - int64(rsBefore)
		if err != nil {
			run.Error = err.Error()
			errs = append(errs, err)
		}
		run.Diff = u.answers.Diff(got)
		run.SameAsUnsplit = err == nil && run.Diff == ""
		rep.Runs = append(rep.Runs, run)
	}
	return errors.Join(errs...)
}

func (vm *splitVM) runtimeSummary() RuntimeSummary {
	s := vm.rt.Stats()
	return RuntimeSummary{
		BackedPages: s.BackedPages, ResidentLimit: s.ResidentLimit, ResidentPages: s.ResidentPages,
		Faults: s.Faults, PageIns: s.PageIns, PageOuts: s.PageOuts,
		ExchangeRequests: s.ExchangeRequests, WorkloadTouches: s.WorkloadReads + s.WorkloadWrites,
	}
}

func (vm *splitVM) close() {
	if vm.srv != nil {
		vm.srv.Close()
	}
	if vm.ln != nil {
		vm.ln.Close()
	}
	if vm.rt != nil {
		vm.rt.Close()
	}
	for _, t := range vm.trans {
		t.Close()
	}
	for _, s := range vm.subhosts {
		s.Close()
	}
	if vm.dir != "" {
		os.RemoveAll(vm.dir)
	}
}
