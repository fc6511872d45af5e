package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/source"
	"github.com/vmemtrans/vmemtrans/kvmhost/agent"
	"github.com/vmemtrans/vmemtrans/kvmhost/attach"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// vmFlags select a split-memory VM served by `vmemtrans mainhost` and how
// its remote pages are read.
type vmFlags struct {
	socket  string
	method  string
	cacheMB int
	rdma    string
	agent   agentFlags
}

func (f *vmFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.socket, "vm", "", "control socket of a split-memory VM's runtime (vmemtrans mainhost --socket)")
	fl.StringVar(&f.method, "method", "adaptive", "how remote pages of --vm are read: proxy, self or adaptive")
	fl.IntVar(&f.cacheMB, "cache-mb", 256, "adaptive method's cache of fetched pages, MiB")
	fl.StringVar(&f.rdma, "rdma", "auto", "transport to the VM's sub-hosts: auto (RDMA when both ends can, else TCP), off (TCP), or an RDMA device name")
	f.agent.register(cmd, "self paging of --method self through this in-guest agent (vmemtrans-agent) instead of the runtime: unix:PATH (QEMU's chardev of its virtio-serial port) or vsock:CID:PORT", agent.DefaultTimeout)
}

// attach connects to the VM's runtime and makes spec read the VM through
// fabric.Memory with the VM's registers.
func (f *vmFlags) attach(ctx context.Context, spec *source.Spec) error {
	if spec.Image != "" || spec.QMP != "" || spec.MemPath != "" {
		return fmt.Errorf("%w: --vm excludes --image, --qmp and --mem-path", source.ErrSpec)
	}
	method, err := fabric.ParseMethod(f.method)
	if err != nil {
		return fmt.Errorf("--method: %w", err)
	}
	dial := func(ctx context.Context, s vmsock.Subhost) (fabric.Transport, error) {
		return dialTransport(ctx, s.Addr, s.VM, s.Key, f.rdma, tcpfallback.Options{})
	}
	opt := attach.Options{Method: method, CacheBytes: int64(f.cacheMB) << 20, Dial: dial}
	var ag *agent.Client
	if f.agent.addr != "" {
		if method != fabric.MethodSelf {
			return fmt.Errorf("--agent serves self paging: give --method self (proxy and adaptive never page the VM)")
		}
		if ag, err = f.agent.dial(ctx); err != nil {
			return err
		}
		opt.Exchanger = ag
	}
	vm, err := attach.Attach(ctx, f.socket, opt)
	if err != nil {
		if ag != nil {
			ag.Close()
		}
		return err
	}
	log.Debug().Str("vm", vm.Info.VM).Str("method", method.String()).Int("subhosts", len(vm.Info.Subhosts)).Str("agent", f.agent.addr).Msg("attached to split-memory vm")
	spec.Reader, spec.Closer = vm, vm
	if ag != nil {
		spec.Closer = closerFunc(func() error {
			st, ms := ag.Stats(), vm.Stats()
			log.Info().Uint64("agent_done", st.Done).Uint64("agent_failed", st.Failed).Uint64("agent_skipped", st.Skipped).
				Uint64("agent_trips", st.Trips).Uint64("pages_exchanged", ms.PagesExchanged).
				Uint64("exchange_fallbacks", ms.ExchangeFallbacks).Uint64("exchange_unverified", ms.ExchangeUnverified).
				Uint64("remote_pages_fetched", ms.RemotePagesFetched).Msg("self paging through the agent")
			return errors.Join(vm.Close(), ag.Close())
		})
	}
	spec.CPU = &image.CPUState{CR3: vm.Info.CR3, CR4: vm.Info.CR4, HasControl: true}
	if vm.Info.QMP != "" {
		return liveRegisters(ctx, spec, vm.Info.QMP)
	}
	if spec.Pause {
		vm.Close()
		return fmt.Errorf("%w: --pause needs a live guest; vm %s is an image split by the runtime", source.ErrSpec, vm.Info.VM)
	}
	return nil
}
