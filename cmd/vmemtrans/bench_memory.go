package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/internal/bench"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

type memFlags struct {
	localPages  uint64
	remotePages uint64
	batch       int
	runs        int
	phase       time.Duration
	rdma        string
}

// spread is the minimum and maximum over the runs beside a median.
type spread struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// memResult is the output of bench memory; the field names are the
// contract benchmarks parse. Rates are medians over the runs.
type memResult struct {
	Transport      string            `json:"transport"`
	LocalMode      string            `json:"local_mode"`
	LocalPages     uint64            `json:"local_pages"`
	RemotePages    uint64            `json:"remote_pages"`
	Batch          int               `json:"batch"`
	Runs           int               `json:"runs"`
	LocalPerS      float64           `json:"local_pages_per_s"`
	BarePerS       float64           `json:"bare_copy_pages_per_s"`
	LocalRatio     float64           `json:"local_ratio"`
	LocalRatioCPU  float64           `json:"local_ratio_cpu"`
	ProxyPerS      float64           `json:"proxy_pages_per_s"`
	TransportPerS  float64           `json:"transport_pages_per_s"`
	ProxyRatio     float64           `json:"proxy_ratio"`
	AdaptiveHitPer float64           `json:"adaptive_hit_pages_per_s"`
	AdaptiveHitFr  float64           `json:"adaptive_hit_fraction"`
	Spread         map[string]spread `json:"spread"`
}

func init() {
	var mf memFlags
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Measure fabric.Memory: local reads vs a bare copy, proxy reads vs the transport, adaptive hits",
		Long: `Build a split VM's memory in this process (a RAM memfd, a location map, and a
sub-host on loopback holding the remote pages), then read random 4 KiB pages
in batches of --batch: resident pages through fabric.Memory (the SIGBUS view)
beside a bare copy() from a mapping of the same memfd; remote pages through
fabric.Memory by proxy beside raw transport batches of the same slots; and
remote pages through the adaptive method once all are cached. Each run
alternates the two sides of each ratio in short slices, so load on the
machine weighs on both alike; the medians over --runs are reported, with
min and max under "spread".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchMemory(cmd.Context(), os.Stdout, mf)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&mf.localPages, "local-pages", 16384, "resident pages (64 MiB by default: beyond the CPU caches)")
	f.Uint64Var(&mf.remotePages, "remote-pages", 4096, "pages held by the sub-host")
	f.IntVar(&mf.batch, "batch", 16, "pages per read batch")
	f.IntVar(&mf.runs, "runs", 5, "measurement runs (medians are reported)")
	f.DurationVar(&mf.phase, "phase", 300*time.Millisecond, "time per measurement per run")
	f.StringVar(&mf.rdma, "rdma", "auto", "transport: auto (RDMA when both ends can, else TCP), off (TCP), or an RDMA device name")
	benchCmd.AddCommand(cmd)
}

func runBenchMemory(ctx context.Context, out io.Writer, mf memFlags) error {
	if mf.localPages == 0 || mf.remotePages == 0 || mf.batch < 1 || mf.runs < 1 || mf.phase <= 0 {
		return fmt.Errorf("--local-pages %d, --remote-pages %d, --batch %d, --runs %d, --phase %v: all must be positive",
			mf.localPages, mf.remotePages, mf.batch, mf.runs, mf.phase)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	keys, err := control.NewKeyring(map[string][]byte{"bench-memory": key})
	if err != nil {
		return err
	}
	sh, err := controltest.New(keys)
	if err != nil {
		return err
	}
	defer sh.Close()
	tr, err := dialTransport(ctx, sh.Addr, "bench-memory", key, mf.rdma,
		tcpfallback.Options{Slots: mf.remotePages, MaxBatch: max(mf.batch, 256)})
	if err != nil {
		return err
	}
	defer tr.Close()
	vm, err := newBenchVM(ctx, tr, mf.localPages, mf.remotePages)
	if err != nil {
		return err
	}
	defer vm.close()
	res := memResult{Transport: tr.Kind(), LocalMode: vm.proxy.LocalMode(), LocalPages: mf.localPages,
		RemotePages: mf.remotePages, Batch: mf.batch, Runs: mf.runs}
	series := map[string][]float64{}
	add := func(k string, v float64) { series[k] = append(series[k], v) }
	const rounds = 20 // alternations per run and ratio
	slice := mf.phase / rounds
	runtime.LockOSThread() // thread CPU time below measures this goroutine
	defer runtime.UnlockOSThread()
	for run := range mf.runs {
		rng := mrand.New(mrand.NewPCG(uint64(run), 0xbe9c4))
		var local, bare, proxy, raw, hits rateSum
		var localPairs, cpuPairs, proxyPairs []float64
		for r := range rounds {
			l, bb := rateSum{}, rateSum{}
			readLocal := func() error {
				return l.measure(slice, func() error { return vm.readMemory(vm.proxy, rng, 0, mf.localPages, mf.batch) }, mf.batch)
			}
			readBare := func() error {
				return bb.measure(slice, func() error { vm.readBare(rng, mf.batch); return nil }, mf.batch)
			}
			first, second := readLocal, readBare
			if r%2 == 1 { // alternate the order too
				first, second = readBare, readLocal
			}
			if err := first(); err != nil {
				return fmt.Errorf("local reads: %w", err)
			}
			if err := second(); err != nil {
				return fmt.Errorf("local reads: %w", err)
			}
			local.add(l)
			bare.add(bb)
			localPairs = append(localPairs, l.rate()/bb.rate())
			cpuPairs = append(cpuPairs, l.cpuRate()/bb.cpuRate())
			p, t := rateSum{}, rateSum{}
			if err := p.measure(slice, func() error {
				return vm.readMemory(vm.proxy, rng, mf.localPages, mf.remotePages, mf.batch)
			}, mf.batch); err != nil {
				return fmt.Errorf("proxy reads: %w", err)
			}
			if err := t.measure(slice, func() error { return vm.readTransport(ctx, rng, mf.batch) }, mf.batch); err != nil {
				return fmt.Errorf("transport reads: %w", err)
			}
			proxy.add(p)
			raw.add(t)
			proxyPairs = append(proxyPairs, p.rate()/t.rate())
		}
		// Repeated reads: every remote page was read (and cached) just before.
		if err := vm.warmAdaptive(); err != nil {
			return err
		}
		before := vm.adaptive.Stats()
		if err := hits.measure(mf.phase/2, func() error {
			return vm.readMemory(vm.adaptive, rng, mf.localPages, mf.remotePages, mf.batch)
		}, mf.batch); err != nil {
			return fmt.Errorf("adaptive reads: %w", err)
		}
		// Entries go stale only if nothing observed their word for the
		// cache's trust window (a stalled process): a few refetches.
		s := vm.adaptive.Stats()
		if lookups := (s.CacheHits + s.CacheMisses) - (before.CacheHits + before.CacheMisses); lookups > 0 {
			add("adaptive_hit_fraction", float64(s.CacheHits-before.CacheHits)/float64(lookups))
		}
		add("local_pages_per_s", local.rate())
		add("bare_copy_pages_per_s", bare.rate())
		add("local_ratio", bench.Median(localPairs))
		add("local_ratio_cpu", bench.Median(cpuPairs))
		add("proxy_pages_per_s", proxy.rate())
		add("transport_pages_per_s", raw.rate())
		add("proxy_ratio", bench.Median(proxyPairs))
		add("adaptive_hit_pages_per_s", hits.rate())
	}
	res.Spread = map[string]spread{}
	for k, v := range series {
		res.Spread[k] = spread{Min: slices.Min(v), Max: slices.Max(v)}
	}
	res.LocalPerS, res.BarePerS, res.LocalRatio = bench.Median(series["local_pages_per_s"]), bench.Median(series["bare_copy_pages_per_s"]), bench.Median(series["local_ratio"])
	res.ProxyPerS, res.TransportPerS, res.ProxyRatio = bench.Median(series["proxy_pages_per_s"]), bench.Median(series["transport_pages_per_s"]), bench.Median(series["proxy_ratio"])
	res.AdaptiveHitPer = bench.Median(series["adaptive_hit_pages_per_s"])
	res.LocalRatioCPU = bench.Median(series["local_ratio_cpu"])
	if v := series["adaptive_hit_fraction"]; len(v) > 0 {
		res.AdaptiveHitFr = bench.Median(v)
	}
	return printBenchMemory(out, res)
}

// rateSum accumulates pages, wall time and this thread's CPU time.
type rateSum struct {
	pages   int
	elapsed time.Duration
	cpu     time.Duration
}

func (r *rateSum) measure(d time.Duration, op func() error, batch int) error {
	start, cpu := time.Now(), threadCPU()
	deadline := start.Add(d)
	for time.Now().Before(deadline) {
		if err := op(); err != nil {
			return err
		}
		r.pages += batch
	}
	r.elapsed += time.Since(start)
	r.cpu += threadCPU() - cpu
	return nil
}

func (r *rateSum) add(o rateSum) {
	r.pages, r.elapsed, r.cpu = r.pages+o.pages, r.elapsed+o.elapsed, r.cpu+o.cpu
}

func (r *rateSum) rate() float64 { return float64(r.pages) / r.elapsed.Seconds() }

// cpuRate is pages per second of this thread's CPU time: what the path
// costs, without the time the machine's other load took the CPU away.
func (r *rateSum) cpuRate() float64 { return float64(r.pages) / max(r.cpu.Seconds(), 1e-9) }

func printBenchMemory(out io.Writer, r memResult) error {
	if jsonOutput {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(name string, v float64, key string) {
		s := r.Spread[key]
		fmt.Fprintf(w, "%s\t%.0f\t(min %.0f, max %.0f)\n", name, v, s.Min, s.Max)
	}
	fmt.Fprintf(w, "setup\t%d local + %d remote pages, batch %d, %d runs\tlocal: %s, transport: %s\n",
		r.LocalPages, r.RemotePages, r.Batch, r.Runs, r.LocalMode, r.Transport)
	row("local pages/s", r.LocalPerS, "local_pages_per_s")
	row("bare copy pages/s", r.BarePerS, "bare_copy_pages_per_s")
	fmt.Fprintf(w, "local ratio\t%.2f\t(min %.2f, max %.2f)\n", r.LocalRatio, r.Spread["local_ratio"].Min, r.Spread["local_ratio"].Max)
	fmt.Fprintf(w, "local ratio (cpu time)\t%.2f\t(min %.2f, max %.2f)\n", r.LocalRatioCPU, r.Spread["local_ratio_cpu"].Min, r.Spread["local_ratio_cpu"].Max)
	row("proxy pages/s", r.ProxyPerS, "proxy_pages_per_s")
	row("transport pages/s", r.TransportPerS, "transport_pages_per_s")
	fmt.Fprintf(w, "proxy ratio\t%.2f\t(min %.2f, max %.2f)\n", r.ProxyRatio, r.Spread["proxy_ratio"].Min, r.Spread["proxy_ratio"].Max)
	row("adaptive hit pages/s", r.AdaptiveHitPer, "adaptive_hit_pages_per_s")
	fmt.Fprintf(w, "adaptive hit fraction\t%.4f\t\n", r.AdaptiveHitFr)
	return w.Flush()
}

// newBatchRanges is batch page-sized ranges.
func newBatchRanges(batch int) []physmem.Range {
	rs := make([]physmem.Range, batch)
	for i := range rs {
		rs[i].Buf = make([]byte, fabric.PageSize)
	}
	return rs
}
