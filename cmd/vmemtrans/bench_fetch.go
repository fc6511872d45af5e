package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/internal/bench"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

type fetchFlags struct {
	subhost  string
	pskFile  string
	vm       string
	pages    uint64
	batch    int
	inflight int
	duration time.Duration
	rdma     string
}

func init() {
	var ff fetchFlags
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Measure page fetches from a sub-host against bare TCP between the same endpoints",
		Long: `Fill a scratch region on a sub-host, then read it back in batches of --batch
slots with --inflight requests outstanding for --duration, reporting pages/s,
bytes/s and per-request latency percentiles. In the same run, on the same
loopback path and server, it measures a bare TCP stream (the sub-host writes
raw bytes) and a bare request/reply ping-pong of one page, and prints the
ratios. Without --subhost it starts a sub-host in this process.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFetch(cmd.Context(), os.Stdout, ff)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ff.subhost, "subhost", "", "sub-host address (default: start one in this process)")
	f.StringVar(&ff.pskFile, "psk-file", "", "pre-shared key file (required with --subhost)")
	f.StringVar(&ff.vm, "vm", "bench", "VM id of the scratch region")
	f.Uint64Var(&ff.pages, "pages", 65536, "pages in the scratch region (the working set)")
	f.IntVar(&ff.batch, "batch", 256, "slots per request")
	f.IntVar(&ff.inflight, "inflight", 2, "requests outstanding at once")
	f.DurationVar(&ff.duration, "duration", 3*time.Second, "how long to measure reads")
	f.StringVar(&ff.rdma, "rdma", "auto", "transport: auto (RDMA when both ends can, else TCP), off (TCP), or an RDMA device name")
	benchCmd.AddCommand(cmd)
}

func runFetch(ctx context.Context, out io.Writer, ff fetchFlags) error {
	cfg := bench.FetchConfig{Subhost: ff.subhost, VM: ff.vm, Pages: ff.pages, Batch: ff.batch, InFlight: ff.inflight, Duration: ff.duration}
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("--batch/--inflight/--pages: %w", err)
	}
	inProcess := ff.subhost == ""
	if inProcess {
		cfg.Key = make([]byte, 32)
		if _, err := rand.Read(cfg.Key); err != nil {
			return err
		}
		keys, err := control.NewKeyring(map[string][]byte{ff.vm: cfg.Key}) // the one VM the bench uses
		if err != nil {
			return err
		}
		sh, err := controltest.New(keys, func(c *control.ServerConfig) { c.Log = log })
		if err != nil {
			return err
		}
		defer sh.Close()
		cfg.Subhost = sh.Addr
	} else {
		if ff.pskFile == "" {
			return errors.New("--subhost needs --psk-file")
		}
		keys, err := control.LoadKeyring(ff.pskFile)
		if err != nil {
			return err
		}
		k, ok := keys.Key(ff.vm)
		if !ok {
			return fmt.Errorf("no key for vm %q in %s", ff.vm, ff.pskFile)
		}
		cfg.Key = bytes.Clone(k)
	}
	tr, err := dialTransport(ctx, cfg.Subhost, ff.vm, cfg.Key, ff.rdma, tcpfallback.Options{Slots: ff.pages, InFlight: ff.inflight, MaxBatch: ff.batch})
	if err != nil {
		return err
	}
	defer tr.Close()
	res, err := bench.Fetch(ctx, tr, cfg)
	if err != nil {
		return err
	}
	res.InProcess = inProcess
	return printFetch(out, res)
}

func printFetch(out io.Writer, r bench.FetchResult) error {
	if jsonOutput {
		return printJSON(out, r)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	where := r.Subhost
	if r.InProcess {
		where += " (in-process)"
	}
	fmt.Fprintf(w, "transport\t%s\t%s\n", r.Transport, where)
	fmt.Fprintf(w, "shape\t%d pages, batch %d, inflight %d\t%d requests in %.2fs\n", r.Pages, r.Batch, r.InFlight, r.Requests, r.Seconds)
	fmt.Fprintf(w, "pages/s\t%.0f\t\n", r.PagesPerS)
	fmt.Fprintf(w, "bytes/s\t%s\tbaseline stream %s (ratio %.2f, rounds %s)\n", rate(r.BytesPerS), rate(r.BaseStream), r.StreamRatio, ratioRange(r.StreamRatios))
	fmt.Fprintf(w, "latency p50\t%.1f us\tbaseline rtt %.1f us (ratio %.2f, rounds %s)\n", r.P50us, r.BaseRTTus, r.LatencyRatio, ratioRange(r.LatencyRatios))
	fmt.Fprintf(w, "latency p99\t%.1f us\t\n", r.P99us)
	fmt.Fprintf(w, "fill\t%.0f pages/s\t\n", r.WritePagesPer)
	return w.Flush()
}

// ratioRange is the range of per-round ratios, "min..max".
func ratioRange(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f..%.2f", slices.Min(v), slices.Max(v))
}

func rate(bps float64) string { return fmt.Sprintf("%.2f GB/s", bps/1e9) }
