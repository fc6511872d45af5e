package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/demo"
)

func init() {
	cfg := demo.DefaultConfig()
	var residentPct, subhosts, cacheMB int
	var image string
	methods := []string{}
	for _, m := range cfg.Methods {
		methods = append(methods, m.String())
	}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The whole system on one machine: a real guest split across sub-hosts, read by every method",
		Long: `Split-migrate the bundled real Linux guest (a rootkit loaded) onto two
sub-hosts on loopback, keep a quarter of it resident on the main host, run a
synthetic workload on it, and run the IDS suite (ps, lsmod, check syscalls,
hidden-tasks, kernel-text, and a whole-memory scan) through proxy, adaptive
and self paging, twice each, beside the unsplit image. Every method must
give the unsplit image's answers; the table shows what each cost. Self
paging runs last: it is the method that changes the VM's resident set.

--json prints an object with "runs": one entry per (method, pass).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.ResidentPct, cfg.Subhosts, cfg.CacheBytes = residentPct, subhosts, int64(cacheMB)<<20
			cfg.Methods = cfg.Methods[:0]
			for _, s := range methods {
				m, err := fabric.ParseMethod(s)
				if err != nil {
					return fmt.Errorf("--methods: %w", err)
				}
				cfg.Methods = append(cfg.Methods, m)
			}
			if image != "" {
				cfg.Image = image
			}
			cfg.Log = log
			if !jsonOutput && isatty.IsTerminal(os.Stderr.Fd()) {
				cfg.Stage = func(s string) { fmt.Fprintf(os.Stderr, "\033[2K\r… %s", s) }
			}
			rep, err := demo.Run(cmd.Context(), cfg)
			if cfg.Stage != nil {
				fmt.Fprint(os.Stderr, "\033[2K\r")
			}
			if rep != nil {
				if jsonOutput {
					if perr := printJSON(os.Stdout, rep); perr != nil {
						return perr
					}
				} else {
					printDemo(os.Stdout, rep)
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&image, "image", "", "guest memory image (default: the bundled "+demo.BundledImage+")")
	fl.IntVar(&residentPct, "resident", cfg.ResidentPct, "percent of guest pages kept resident on the main host")
	fl.IntVar(&subhosts, "subhosts", cfg.Subhosts, "sub-hosts holding the rest")
	fl.IntVar(&cacheMB, "cache-mb", int(cfg.CacheBytes>>20), "adaptive method's page cache, MiB")
	fl.StringSliceVar(&methods, "methods", methods, "split-memory read methods to run, in order (proxy, self, adaptive)")
	rootCmd.AddCommand(cmd)
}

func printDemo(w io.Writer, rep *demo.Report) {
	f := rep.Findings
	fmt.Fprintf(w, "guest %s: %d MiB, %d processes, %d modules\n", rep.Image, rep.GuestMiB, f.Processes, f.Modules)
	fmt.Fprintf(w, "  unsplit findings: hidden tasks %v, hooked syscalls %v, %d scan matches\n", f.HiddenTasks, f.SyscallHooks, f.ScanMatches)
	fmt.Fprintf(w, "split over %d sub-hosts (%s) with %d%% resident, in %.2f s; runtime: %d faults, %d page-ins, %d page-outs, %d exchange requests\n\n",
		len(rep.Subhosts), rep.Transport, rep.ResidentPct, rep.SplitS, rep.Runtime.Faults, rep.Runtime.PageIns, rep.Runtime.PageOuts, rep.Runtime.ExchangeRequests)
	t := newTable(w, "METHOD", "PASS", "WALL s", "CHECKS s", "SCAN s", "REMOTE FETCHED", "EXCHANGED", "CACHE HITS", "RESIDENT Δ", "SAME AS UNSPLIT")
	for _, r := range rep.Runs {
		same := "yes"
		if !r.SameAsUnsplit {
			same = "NO " + strings.TrimSpace(r.Diff+" "+r.Error)
		}
		t.row(r.Method, r.Pass, fmt.Sprintf("%.3f", r.WallS), fmt.Sprintf("%.3f", r.ChecksS), fmt.Sprintf("%.3f", r.ScanS),
			r.RemotePagesFetched, r.PagesExchanged, r.CacheHits, fmt.Sprintf("%+d", r.ResidentDelta), same)
	}
	_ = t.flush()
	if rep.AllSame {
		fmt.Fprintf(w, "\nevery method gave the unsplit image's answers (demo took %.1f s)\n", rep.WallS)
	}
}
