package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/kvmhost/handoff"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// qemuFlags select serving a live QEMU guest instead of an image.
type qemuFlags struct {
	enabled     bool
	preload     string
	handoffWait time.Duration
	minResident uint64
	statsFile   string
}

func (q *qemuFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&q.enabled, "qemu", false, "serve a QEMU guest started with the arguments after --")
	f.StringVar(&q.preload, "preload", "", "the vmemtrans-preload.so library QEMU runs with (default: next to this binary)")
	f.DurationVar(&q.handoffWait, "handoff-timeout", time.Minute, "how long QEMU may take to map its guest RAM")
	f.Uint64Var(&q.minResident, "min-resident", 0, "floor of the resident limit in pages with --qemu (0: 256)")
	f.StringVar(&q.statsFile, "stats-file", "", "write the runtime's counters as JSON to this file when QEMU exits")
}

// qemuRunStats are the counters written at the end of a --qemu run.
type qemuRunStats struct {
	kvmhost.Stats
	// TouchedPages are the frames the guest gave content (first touches).
	TouchedPages uint64 `json:"touched_pages"`
	// EverPagedOut are the frames paged out at least once.
	EverPagedOut uint64 `json:"ever_paged_out"`
	// Seconds is how long QEMU ran.
	Seconds float64 `json:"seconds"`
}

// qemuCommand splits the arguments after -- into the binary and its
// arguments, checks that guest RAM is a shared memfd, and adds a QMP
// socket at defaultQMP unless one is given. It returns the QMP path.
func qemuCommand(args []string, defaultQMP string) (bin string, out []string, qmp string, err error) {
	bin = "qemu-system-x86_64"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		bin, args = args[0], args[1:]
	}
	memfd := false
	for i, a := range args {
		if strings.Contains(a, "memory-backend-memfd") && strings.Contains(a, "share=on") {
			memfd = true
		}
		if (a == "-qmp" || a == "--qmp") && i+1 < len(args) {
			v := args[i+1]
			if p, ok := strings.CutPrefix(v, "unix:"); ok {
				qmp, _, _ = strings.Cut(p, ",")
			}
		}
	}
	if !memfd {
		return "", nil, "", fmt.Errorf("%w: --qemu needs guest RAM on a shared memfd: add -object memory-backend-memfd,id=ram,size=SIZE,share=on -machine memory-backend=ram", errMainhost)
	}
	out = append([]string(nil), args...)
	if qmp == "" {
		qmp = defaultQMP
		out = append(out, "-qmp", "unix:"+qmp+",server=on,wait=off")
	}
	return bin, out, qmp, nil
}

// maxLowRAM is the most guest RAM a pc machine keeps below 4 GiB in one
// piece, where the memfd offset is the guest-physical address.
const maxLowRAM = 3 << 30

func runMainhostQEMU(ctx context.Context, mf mainhostFlags, args []string) error {
	if err := mf.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin, qargs, qmp, err := qemuCommand(args, mf.socket+".qmp")
	if err != nil {
		return err
	}
	lib, err := preloadPath(mf.qemu.preload)
	if err != nil {
		return err
	}
	var key []byte
	if len(mf.subhosts) > 0 {
		keys, err := control.LoadKeyring(mf.pskFile)
		if err != nil {
			return err
		}
		k, ok := keys.Key(mf.vm)
		if !ok {
			return fmt.Errorf("%w: no key for vm %q in %s", errMainhost, mf.vm, mf.pskFile)
		}
		key = k
	}
	l, err := vmsock.Listen(mf.socket)
	if err != nil {
		return err
	}
	defer l.Close()
	hl, err := handoff.Listen(mf.socket + ".handoff")
	if err != nil {
		return err
	}
	defer hl.Close()

	cmd := exec.Command(bin, qargs...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib, "VMEMTRANS_HANDOFF_SOCKET="+hl.Path(), "VMEMTRANS_HANDOFF_MIN_MB=16",
		"VMEMTRANS_HANDOFF_NAME=memory-backend-memfd") // the name QEMU gives the memfd of a memory-backend-memfd
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stderr, os.Stderr // stdout carries only the runtime's own report
	cmd.SysProcAttr = vmmProcAttr()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopVMM(cmd, exited)
	log.Info().Int("pid", cmd.Process.Pid).Str("qmp", qmp).Msg("mainhost: qemu started")

	actx, cancel := context.WithTimeout(ctx, mf.qemu.handoffWait)
	type accepted struct {
		c   *handoff.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() { c, err := hl.Accept(actx); acc <- accepted{c, err} }()
	var h *handoff.Conn
	select {
	case a := <-acc:
		cancel()
		if a.err != nil {
			return a.err
		}
		h = a.c
	case err := <-exited:
		cancel()
		exited <- err
		return fmt.Errorf("qemu exited before handing over its guest ram: %v", err)
	}
	if h.Offset != 0 || h.Length > maxLowRAM {
		h.Space.Close()
		h.Ack(false)
		return fmt.Errorf("%w: qemu maps guest ram %#x bytes at file offset %#x: want offset 0 and at most 3 GiB (one range below 4 GiB)", errMainhost, h.Length, h.Offset)
	}
	layout := []fabric.PhysRange{{Start: 0, End: h.Length}}
	var subs []fabric.Transport
	defer func() {
		for _, t := range subs {
			t.Close()
		}
	}()
	for i, addr := range mf.subhosts {
		t, err := dialTransport(ctx, addr, mf.vm, key, mf.rdma, tcpfallback.Options{Slots: kvmhost.SlotsNeeded(layout, len(mf.subhosts))})
		if err != nil {
			h.Space.Close()
			h.Ack(false)
			return fmt.Errorf("sub-host %d (%s): %w", i, addr, err)
		}
		subs = append(subs, t)
	}
	rt, err := kvmhost.NewForSpace(kvmhost.SpaceConfig{RAM: h.RAM, UFFD: h.UFFD, Base: h.Addr, Length: h.Length,
		Subhosts: subs, ResidentPct: mf.resident, MinResident: mf.qemu.minResident, Log: log})
	if err != nil {
		h.Space.Close()
		h.Ack(false)
		return err
	}
	defer rt.Close()
	if err := rt.Start(ctx); err != nil {
		h.Ack(false)
		return err
	}
	if err := h.Ack(true); err != nil {
		return err
	}

	vi := vmsock.VMInfo{VM: mf.vm, Layout: layout, RAMSize: h.Length, QMP: qmp}
	for i, addr := range mf.subhosts {
		vi.Subhosts = append(vi.Subhosts, vmsock.Subhost{ID: uint8(i), Addr: addr, VM: mf.vm, Key: key})
	}
	srv, err := vmsock.NewServer(vmsock.ServerConfig{Backend: vmsock.RuntimeBackend{Runtime: rt, VM: vi}, Log: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	info := mainhostInfo{VM: mf.vm, Subhosts: mf.subhosts, Socket: l.Path(), QMP: qmp, QEMUPid: cmd.Process.Pid}
	for _, t := range subs {
		info.Transports = append(info.Transports, t.Kind())
	}
	if mf.metrics != "" {
		bound, stopMetrics, err := serveMetrics(mf.metrics, mainhostMetrics(rt, srv))
		if err != nil {
			return err
		}
		defer stopMetrics()
		info.Metrics = bound
	}
	info.BackedPages = rt.Stats().BackedPages
	printMainhostInfo(info)

	var runErr error
	select {
	case err := <-served:
		runErr = fmt.Errorf("control socket: %w", err)
	case err := <-exited:
		exited <- err
		if err != nil {
			runErr = fmt.Errorf("qemu: %w", err)
		}
		log.Info().Err(err).Msg("mainhost: qemu exited")
	case <-ctx.Done():
		log.Info().Msg("mainhost: shutting down")
	}
	// QEMU goes first: the runtime serves its faults until it is gone.
	stopVMM(cmd, exited)
	if mf.qemu.statsFile != "" {
		if err := writeRunStats(mf.qemu.statsFile, rt, time.Since(started)); err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}

func writeRunStats(path string, rt *kvmhost.Runtime, ran time.Duration) error {
	s := qemuRunStats{Stats: rt.Stats(), Seconds: ran.Seconds()}
	s.TouchedPages = s.ZeroFills
	locs := rt.Locations()
	for g := range locs.Len() {
		if locs.Load(fabric.GFN(g)).Gen() > 0 { // a first touch keeps generation 0; every move bumps it
			s.EverPagedOut++
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// preloadPath finds the preload library: the flag, else next to this binary.
func preloadPath(flag string) (string, error) {
	p := flag
	if p == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("%w: find vmemtrans-preload.so: %w (give --preload)", errMainhost, err)
		}
		p = filepath.Join(filepath.Dir(exe), "vmemtrans-preload.so")
	}
	abs, err := filepath.Abs(p)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		return "", fmt.Errorf("%w: preload library %s: %w (build it with make build, or give --preload)", errMainhost, p, err)
	}
	return abs, nil
}

// stopVMM ends QEMU if it still runs: SIGTERM, then SIGKILL after 5 s.
func stopVMM(cmd *exec.Cmd, exited chan error) {
	select {
	case err := <-exited:
		exited <- err
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		exited <- <-exited
	}
}
