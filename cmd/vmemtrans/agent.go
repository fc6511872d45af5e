package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/kvmhost/agent"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
)

func init() {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Talk to a VM's in-guest agent (vmemtrans-agent)",
	}
	cmd.AddCommand(agentTouchCommand(), agentPingCommand())
	rootCmd.AddCommand(cmd)
}

func agentPingCommand() *cobra.Command {
	var af agentFlags
	cmd := &cobra.Command{
		Use:   "ping --agent ADDR --agent-key-file F",
		Short: "Check that the agent answers and knows the key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if af.addr == "" {
				return errors.New("--agent is required")
			}
			start := time.Now()
			c, err := af.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Ping(cmd.Context()); err != nil {
				return err
			}
			took := time.Since(start)
			if jsonOutput {
				return printJSON(os.Stdout, map[string]any{"agent": af.addr, "version": c.Version(), "round_trip_ms": took.Seconds() * 1000})
			}
			fmt.Printf("agent %s answers (protocol version %d, %v with the handshake)\n", af.addr, c.Version(), took.Round(time.Microsecond))
			return nil
		},
	}
	af.register(cmd, "the agent: unix:PATH (QEMU's chardev of its virtio-serial port) or vsock:CID:PORT", agent.DefaultTimeout)
	return cmd
}

// touchResult is one GFN of `agent touch`.
type touchResult struct {
	GFN      string `json:"gfn"`
	Answer   string `json:"answer"`           // done, or the agent's reason / the failure
	Error    string `json:"error,omitempty"`  // the full error when not done
	Before   string `json:"before,omitempty"` // location state before the request (with --vm)
	After    string `json:"after,omitempty"`  // and after
	Verified *bool  `json:"verified,omitempty"`
}

type touchReport struct {
	Agent     string            `json:"agent"`
	VM        string            `json:"vm,omitempty"`
	Requested int               `json:"requested"`
	Done      int               `json:"done"`
	Verified  *int              `json:"verified,omitempty"` // answered done and local now (with --vm)
	TookMS    float64           `json:"took_ms"`
	Runtime   map[string]uint64 `json:"runtime_delta,omitempty"`
	Results   []touchResult     `json:"results"`
}

func agentTouchCommand() *cobra.Command {
	var (
		af    agentFlags
		vm    string
		pages int
		gfnS  []string
	)
	cmd := &cobra.Command{
		Use:   "touch --agent ADDR --agent-key-file F [--vm SOCK] (--pages N | --gfn G ...)",
		Short: "Ask the in-guest agent to make guest frames resident, and check that it did",
		Long: `touch asks the agent to read the given guest frames from inside the guest, so that
the VMM pages them in. With --vm (the runtime's control socket) it picks --pages
frames that are remote in the location map, and checks after the answer that
each frame answered done is local now (the agent is never trusted), and shows
the runtime's page-in counters before and after. Without --vm it only asks.
Exit status 0 when every frame was answered done (and, with --vm, verified).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if af.addr == "" {
				return errors.New("--agent is required")
			}
			gfns := make([]fabric.GFN, 0, len(gfnS))
			for _, s := range gfnS {
				v, err := strconv.ParseUint(s, 0, 64)
				if err != nil {
					return fmt.Errorf("--gfn %q: %w", s, err)
				}
				gfns = append(gfns, fabric.GFN(v))
			}
			switch {
			case pages > 0 && len(gfns) > 0:
				return errors.New("give --pages or --gfn, not both")
			case pages > 0 && vm == "":
				return errors.New("--pages picks remote frames from the location map: it needs --vm")
			case pages <= 0 && len(gfns) == 0:
				return errors.New("give --pages N (with --vm) or --gfn G")
			}
			rep, err := runTouch(cmd.Context(), af, vm, pages, gfns)
			if err != nil {
				return err
			}
			if jsonOutput {
				err = printJSON(os.Stdout, rep)
			} else {
				err = printTouch(os.Stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Done < rep.Requested || (rep.Verified != nil && *rep.Verified < rep.Requested) {
				return fmt.Errorf("agent touch: %d of %d frames answered done%s", rep.Done, rep.Requested, verifiedText(rep))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&vm, "vm", "", "the runtime's control socket: pick remote frames there and verify them after")
	f.IntVar(&pages, "pages", 0, "pick this many frames that are remote now (needs --vm)")
	f.StringSliceVar(&gfnS, "gfn", nil, "guest frame numbers to touch (decimal or 0x hex; repeat or comma-separate)")
	af.register(cmd, "the agent: unix:PATH (QEMU's chardev of its virtio-serial port) or vsock:CID:PORT", 30*time.Second)
	return cmd
}

func verifiedText(rep *touchReport) string {
	if rep.Verified == nil {
		return ""
	}
	return fmt.Sprintf(", %d verified local", *rep.Verified)
}

func runTouch(ctx context.Context, af agentFlags, vm string, pages int, gfns []fabric.GFN) (*touchReport, error) {
	rep := &touchReport{Agent: af.addr}
	var (
		rt     *vmsock.Client
		locs   fabric.Locations
		before map[string]uint64
	)
	if vm != "" {
		var err error
		if rt, err = vmsock.DialContext(ctx, vm); err != nil {
			return nil, err
		}
		defer rt.Close()
		rep.VM = rt.Info().VM
		ram, lm, err := rt.Files(ctx)
		if err != nil {
			return nil, err
		}
		ram.Close()
		view, err := fabric.OpenLocationMapReadOnly(int(lm.Fd()))
		lm.Close()
		if err != nil {
			return nil, fmt.Errorf("location map: %w", err)
		}
		defer view.Close()
		locs = view
		if pages > 0 {
			if gfns = pickRemote(locs, rt.Info().Layout, pages); len(gfns) == 0 {
				return nil, errors.New("no frame of the vm is remote now: nothing to touch")
			}
		}
		if before, err = rt.Counters(ctx); err != nil {
			log.Info().Err(err).Msg("agent touch: the runtime offers no counters")
		}
	}
	c, err := af.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	words := make([]fabric.Word, len(gfns))
	if locs != nil {
		for i, g := range gfns {
			words[i] = locs.Load(g)
		}
	}
	start := time.Now()
	errs := c.MakeResident(ctx, gfns)
	rep.TookMS = time.Since(start).Seconds() * 1000
	rep.Requested = len(gfns)
	verified := 0
	for i, g := range gfns {
		r := touchResult{GFN: fmt.Sprintf("%#x", uint64(g)), Answer: "done"}
		if errs[i] != nil {
			r.Answer, r.Error = answerOf(errs[i]), errs[i].Error()
		} else {
			rep.Done++
		}
		if locs != nil {
			after := locs.Load(g)
			r.Before, r.After = words[i].State().String(), after.State().String()
			ok := errs[i] == nil && after.State() == fabric.StateLocal
			r.Verified = &ok
			if ok {
				verified++
			}
		}
		rep.Results = append(rep.Results, r)
	}
	if locs != nil {
		rep.Verified = &verified
	}
	if before != nil {
		if after, err := rt.Counters(ctx); err == nil {
			rep.Runtime = map[string]uint64{}
			for _, k := range []string{"page_ins_total", "faults_total", "exchanged_pages_total", "page_outs_total"} {
				rep.Runtime[k] = after[k] - before[k]
			}
		}
	}
	return rep, nil
}

// answerOf names why a frame was not answered done.
func answerOf(err error) string {
	for _, r := range []agent.Reason{agent.ReasonNotRAM, agent.ReasonReadFailed, agent.ReasonTimeout, agent.ReasonUnavailable} {
		if errors.Is(err, r.Err()) {
			return r.String()
		}
	}
	if errors.Is(err, agent.ErrAgentDown) {
		return "agent-distrusted"
	}
	return "failed"
}

// pickRemote picks up to n frames that are remote now, spread evenly over
// the remote frames of the layout from 1 MiB up (below it, firmware
// areas that the guest kernel does not map as RAM), else from anywhere.
func pickRemote(locs fabric.Locations, layout []fabric.PhysRange, n int) []fabric.GFN {
	collect := func(from fabric.GFN) []fabric.GFN {
		var remote []fabric.GFN
		for _, r := range layout {
			for g := max(fabric.GFNOf(r.Start), from); g < fabric.GFNOf(r.End) && uint64(g) < locs.Len(); g++ {
				if locs.Load(g).State() == fabric.StateRemote {
					remote = append(remote, g)
				}
			}
		}
		return remote
	}
	remote := collect(fabric.GFNOf(1 << 20))
	if len(remote) < n {
		remote = collect(0)
	}
	if len(remote) <= n {
		return remote
	}
	out := make([]fabric.GFN, n)
	for i := range out {
		out[i] = remote[i*len(remote)/n]
	}
	return out
}

func printTouch(w io.Writer, rep *touchReport) error {
	t := newTable(w, "GFN", "ANSWER", "BEFORE", "AFTER", "VERIFIED", "ERROR")
	for _, r := range rep.Results {
		v := "-"
		if r.Verified != nil {
			v = strconv.FormatBool(*r.Verified)
		}
		t.row(r.GFN, r.Answer, dash(r.Before), dash(r.After), v, r.Error)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "agent %s: %d of %d frames answered done%s in %.1f ms\n", rep.Agent, rep.Done, rep.Requested, verifiedText(rep), rep.TookMS)
	if rep.Runtime != nil {
		fmt.Fprintf(w, "runtime: %d page-ins, %d faults, %d self-paging page-ins, %d page-outs meanwhile\n",
			rep.Runtime["page_ins_total"], rep.Runtime["faults_total"], rep.Runtime["exchanged_pages_total"], rep.Runtime["page_outs_total"])
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
