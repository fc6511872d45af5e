package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// errMainhost reports unusable mainhost flags.
var errMainhost = errors.New("mainhost")

type mainhostFlags struct {
	image      string
	subhosts   []string
	pskFile    string
	vm         string
	resident   int
	socket     string
	threads    int
	hot        int
	writeRatio float64
	metrics    string
	rdma       string
	qemu       qemuFlags
}

func init() {
	var mf mainhostFlags
	cmd := &cobra.Command{
		Use:   "mainhost",
		Short: "Run the split-memory runtime for a memory image and serve its control socket",
		Long: `Split-migrate a guest memory image (raw, QEMU ELF dump, or zstd of either):
keep --resident percent of its pages in a guest RAM memfd and write the rest
to slots of the sub-hosts (--subhost, in order: sub-host 0, 1, ...), then run
the split-memory runtime: faults page in from the sub-hosts, page-outs keep
the resident limit, and an optional synthetic workload (--workload-*) stands
in for the vCPUs. Its writes go only to pages the guest kernel holds free.

IDS processes of the same user reach the VM through the unix socket
(--socket, mode 0600): the RAM and location-map descriptors, the layout, CR3
and CR4, the sub-hosts with this VM's key, and self-paging requests.
The key of --vm is read from --psk-file ("VMID HEXKEY" lines, as the
sub-hosts have it). Runs until SIGINT or SIGTERM, then removes the socket.

With --qemu, the runtime serves a running guest instead: it starts QEMU with
the arguments after "--" (the first is the QEMU binary unless it starts with
"-"; default qemu-system-x86_64), which must put guest RAM on a shared memfd:
  -object memory-backend-memfd,id=ram,size=1G,share=on -machine memory-backend=ram
(at most 3 GiB on a pc machine, so the memfd offset is the guest-physical
address). QEMU runs with LD_PRELOAD=--preload, which hands the userfaultfd of
its RAM mapping to the runtime before the guest starts. Every frame starts
never written; --resident is then the share of the pages the guest has
touched that stays resident. Unless the arguments have a -qmp unix socket,
one is added at SOCKET.qmp; IDS commands on --vm read CR3 and CR4 there
(and --pause stops the guest while they read). QEMU's exit ends the runtime;
the runtime's end kills QEMU.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if mf.qemu.enabled {
				return runMainhostQEMU(cmd.Context(), mf, args)
			}
			if len(args) > 0 {
				return fmt.Errorf("%w: arguments %q given without --qemu", errMainhost, args)
			}
			return runMainhost(cmd.Context(), mf)
		},
	}
	f := cmd.Flags()
	f.StringVar(&mf.image, "image", "", "guest memory image (required without --qemu)")
	f.StringArrayVar(&mf.subhosts, "subhost", nil, "sub-host address host:port (repeat for several)")
	f.StringVar(&mf.pskFile, "psk-file", "", "pre-shared key file holding the key of --vm (required with --subhost)")
	f.StringVar(&mf.vm, "vm", "vm0", "VM id: the region name on the sub-hosts and the key to use")
	f.IntVar(&mf.resident, "resident", 25, "percent of the backed pages kept resident (1..100)")
	f.StringVar(&mf.socket, "socket", "", "path of the control socket (required)")
	f.IntVar(&mf.threads, "workload-threads", 0, "synthetic vCPU threads (0: no workload)")
	f.IntVar(&mf.hot, "workload-hot", 0, "hot-set size in pages (0: every backed page equally hot)")
	f.Float64Var(&mf.writeRatio, "workload-write-ratio", 0, "share of workload accesses that write, 0..1 (writes need the guest kernel's free pages)")
	f.StringVar(&mf.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port)")
	f.StringVar(&mf.rdma, "rdma", "auto", "transport to the sub-hosts: auto (RDMA when both ends can, else TCP), off (TCP), or an RDMA device name")
	mf.qemu.register(cmd)
	_ = cmd.MarkFlagRequired("socket")
	rootCmd.AddCommand(cmd)
}

// mainhostInfo is what the runtime prints once its socket serves.
type mainhostInfo struct {
	Socket        string   `json:"socket"`
	VM            string   `json:"vm"`
	Metrics       string   `json:"metrics,omitempty"`  // http address of /metrics
	QMP           string   `json:"qmp,omitempty"`      // QMP socket of the QEMU guest (--qemu)
	QEMUPid       int      `json:"qemu_pid,omitempty"` // the QEMU process (--qemu)
	BackedPages   uint64   `json:"backed_pages"`
	ResidentPages uint64   `json:"resident_pages"`
	RemotePages   uint64   `json:"remote_pages"`
	Subhosts      []string `json:"subhosts"`
	Transports    []string `json:"transports"`
}

func (mf mainhostFlags) check() error {
	switch {
	case mf.image == "" && !mf.qemu.enabled:
		return fmt.Errorf("%w: give --image FILE, or --qemu -- QEMU-ARGS", errMainhost)
	case mf.image != "" && mf.qemu.enabled:
		return fmt.Errorf("%w: --image and --qemu exclude each other", errMainhost)
	case mf.resident < 1 || mf.resident > 100:
		return fmt.Errorf("%w: --resident %d: want 1..100", errMainhost, mf.resident)
	case mf.resident < 100 && len(mf.subhosts) == 0:
		return fmt.Errorf("%w: --resident %d needs at least one --subhost to hold the other pages", errMainhost, mf.resident)
	case len(mf.subhosts) > 0 && mf.pskFile == "":
		return fmt.Errorf("%w: --subhost needs --psk-file with the key of vm %q", errMainhost, mf.vm)
	case len(mf.subhosts) > fabric.MaxSubHost+1:
		return fmt.Errorf("%w: %d sub-hosts, at most %d", errMainhost, len(mf.subhosts), fabric.MaxSubHost+1)
	case mf.writeRatio < 0 || mf.writeRatio > 1 || mf.threads < 0 || mf.hot < 0:
		return fmt.Errorf("%w: workload threads %d, hot set %d, write ratio %g: want non-negative, ratio at most 1", errMainhost, mf.threads, mf.hot, mf.writeRatio)
	case !control.ValidVMID(mf.vm):
		return fmt.Errorf("%w: --vm %q is not a valid VM id", errMainhost, mf.vm)
	}
	return nil
}

func runMainhost(ctx context.Context, mf mainhostFlags) error {
	if err := mf.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The socket first: a path already served fails before minutes of
	// splitting. Clients that connect meanwhile wait for the runtime.
	l, err := vmsock.Listen(mf.socket)
	if err != nil {
		return err
	}
	defer l.Close()

	img, err := image.Open(mf.image)
	if err != nil {
		return err
	}
	defer img.Close()
	layout := kvmhost.ImageLayout(img.Extents())
	if len(layout) == 0 {
		return fmt.Errorf("%w: image %s backs no whole page", errMainhost, mf.image)
	}
	var key []byte
	if len(mf.subhosts) > 0 {
		keys, err := control.LoadKeyring(mf.pskFile)
		if err != nil {
			return err
		}
		k, ok := keys.Key(mf.vm)
		if !ok {
			return fmt.Errorf("%w: no key for vm %q in %s (add one with `vmemtrans subhost keys add %s`)", errMainhost, mf.vm, mf.pskFile, mf.vm)
		}
		key = k
	}

	info := mainhostInfo{VM: mf.vm, Subhosts: mf.subhosts}
	slots := kvmhost.SlotsNeeded(layout, len(mf.subhosts))
	var subs []fabric.Transport
	defer func() {
		for _, t := range subs {
			t.Close()
		}
	}()
	for i, addr := range mf.subhosts {
		t, err := dialTransport(ctx, addr, mf.vm, key, mf.rdma, tcpfallback.Options{Slots: slots})
		if err != nil {
			return fmt.Errorf("sub-host %d (%s): %w", i, addr, err)
		}
		subs = append(subs, t)
		info.Transports = append(info.Transports, t.Kind())
		log.Info().Int("id", i).Str("addr", addr).Str("transport", t.Kind()).Uint64("slots", t.Slots()).Msg("mainhost: sub-host connected")
	}

	wl := kvmhost.WorkloadConfig{Threads: mf.threads, HotSetPages: mf.hot, WriteRatio: mf.writeRatio}
	if mf.threads > 0 && mf.writeRatio > 0 {
		if wl.WritableGFNs, err = guestFreePages(ctx, img, layout); err != nil {
			return fmt.Errorf("%w: workload writes go only to the guest kernel's free pages, which were not found: %w (use --workload-write-ratio 0 for a read-only workload)", errMainhost, err)
		}
		log.Info().Int("pages", len(wl.WritableGFNs)).Msg("mainhost: workload writes the guest's free pages")
	}
	rt, err := kvmhost.New(ctx, kvmhost.Config{
		Memory: img, Layout: layout, Subhosts: subs, ResidentPct: mf.resident, Workload: wl, Log: log,
	})
	if err != nil {
		return fmt.Errorf("split %s: %w", mf.image, err)
	}
	defer rt.Close()
	if err := rt.Start(ctx); err != nil {
		return fmt.Errorf("start the runtime: %w", err)
	}

	cr3, cr4 := bootControlRegisters(img)
	vi := vmsock.VMInfo{VM: mf.vm, Layout: layout, CR3: cr3, CR4: cr4, RAMSize: layout[len(layout)-1].End}
	for i, addr := range mf.subhosts {
		vi.Subhosts = append(vi.Subhosts, vmsock.Subhost{ID: uint8(i), Addr: addr, VM: mf.vm, Key: key})
	}
	srv, err := vmsock.NewServer(vmsock.ServerConfig{Backend: vmsock.RuntimeBackend{Runtime: rt, VM: vi}, Log: log})
	if err != nil {
		return err
	}
	defer srv.Close() // closes l, removing the socket
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	if mf.metrics != "" {
		bound, stopMetrics, err := serveMetrics(mf.metrics, mainhostMetrics(rt, srv))
		if err != nil {
			return err
		}
		defer stopMetrics()
		info.Metrics = bound
	}
	st := rt.Stats()
	info.Socket, info.BackedPages, info.ResidentPages, info.RemotePages = l.Path(), st.BackedPages, st.ResidentPages, st.RemotePages
	printMainhostInfo(info)

	select {
	case err := <-served:
		return fmt.Errorf("control socket: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("mainhost: shutting down")
	return nil
}

func printMainhostInfo(info mainhostInfo) {
	if jsonOutput {
		_ = json.NewEncoder(os.Stdout).Encode(info)
		return
	}
	fmt.Printf("mainhost serving vm %s on %s: %d backed pages, %d resident, %d on %d sub-host(s)\n",
		info.VM, info.Socket, info.BackedPages, info.ResidentPages, info.RemotePages, len(info.Subhosts))
	if info.Metrics != "" {
		fmt.Printf("metrics at http://%s/metrics\n", info.Metrics)
	}
}

// bootControlRegisters returns CR3 and CR4 of the first CPU whose control
// registers the image recorded; zeros for images without CPU state.
func bootControlRegisters(img *image.Image) (cr3, cr4 uint64) {
	for _, c := range img.CPUs() {
		if c.HasControl {
			return c.CR3, c.CR4
		}
	}
	return 0, 0
}
