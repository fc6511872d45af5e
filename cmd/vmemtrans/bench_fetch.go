package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
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

// fetchResult is the output of bench fetch; the field names are the
// contract benchmarks parse.
type fetchResult struct {
	Transport     string  `json:"transport"`
	Subhost       string  `json:"subhost"`
	InProcess     bool    `json:"in_process_subhost"`
	Pages         uint64  `json:"pages"`
	Batch         int     `json:"batch"`
	InFlight      int     `json:"inflight"`
	Seconds       float64 `json:"seconds"`
	Requests      int     `json:"requests"`
	PagesPerS     float64 `json:"pages_per_s"`
	BytesPerS     float64 `json:"bytes_per_s"`
	P50us         float64 `json:"p50_us"`
	P99us         float64 `json:"p99_us"`
	BaseStream    float64 `json:"baseline_stream_bytes_per_s"`
	BaseRTTus     float64 `json:"baseline_rtt_us"`
	StreamRatio   float64 `json:"stream_ratio"`     // bytes_per_s / baseline_stream_bytes_per_s
	LatencyRatio  float64 `json:"latency_ratio"`    // p50_us / baseline_rtt_us
	WritePagesPer float64 `json:"fill_pages_per_s"` // the fill (write) phase
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
	if ff.batch < 1 || ff.batch > control.MaxSlotsPerRequest {
		return fmt.Errorf("--batch %d: want 1..%d", ff.batch, control.MaxSlotsPerRequest)
	}
	if ff.inflight < 1 || ff.pages < uint64(ff.batch) {
		return fmt.Errorf("--inflight %d, --pages %d: need inflight >= 1 and pages >= batch", ff.inflight, ff.pages)
	}
	res := fetchResult{Subhost: ff.subhost, Pages: ff.pages, Batch: ff.batch, InFlight: ff.inflight}
	var key []byte
	if ff.subhost == "" {
		sh, err := startBenchSubhost(ff.vm)
		if err != nil {
			return err
		}
		defer sh.close()
		res.Subhost, res.InProcess, key = sh.addr, true, sh.key
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
		key = k
	}

	tr, err := dialTransport(ctx, res.Subhost, ff.vm, key, ff.rdma, tcpfallback.Options{Slots: ff.pages, InFlight: ff.inflight, MaxBatch: ff.batch})
	if err != nil {
		return err
	}
	defer tr.Close()
	res.Transport = tr.Kind()
	if tr.Slots() < ff.pages {
		return fmt.Errorf("region of vm %q has %d slots, fewer than --pages %d", ff.vm, tr.Slots(), ff.pages)
	}
	if res.WritePagesPer, err = fillAndVerify(ctx, tr, ff); err != nil {
		return err
	}
	if err := measureInterleaved(ctx, tr, ff, key, &res); err != nil {
		return err
	}
	return printFetch(out, res)
}

// fillPattern is the content of a slot during the bench, so reads are checked.
func fillPattern(buf []byte, slot uint64) {
	for i := 0; i < len(buf); i += 8 {
		v := slot*0x9e3779b97f4a7c15 + uint64(i)
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
}

// fillAndVerify writes every page of the working set, then reads it all
// back once and compares: a benchmark of wrong data is worthless.
func fillAndVerify(ctx context.Context, tr fabric.Transport, ff fetchFlags) (float64, error) {
	const chunk = 4096
	want := make([]byte, fabric.PageSize)
	var writeTime time.Duration
	for base := uint64(0); base < ff.pages; base += chunk {
		n := min(chunk, ff.pages-base)
		b := make([]fabric.SlotIO, n)
		for i := range b {
			b[i] = fabric.SlotIO{Slot: base + uint64(i), Buf: make([]byte, fabric.PageSize)}
			fillPattern(b[i].Buf, b[i].Slot)
		}
		t0 := time.Now()
		if err := tr.WriteSlots(ctx, b); err != nil {
			return 0, fmt.Errorf("fill: %w", err)
		}
		writeTime += time.Since(t0)
		for i := range b {
			clear(b[i].Buf)
		}
		if err := tr.ReadSlots(ctx, b); err != nil {
			return 0, fmt.Errorf("verify: %w", err)
		}
		for i := range b {
			fillPattern(want, b[i].Slot)
			if string(want) != string(b[i].Buf) {
				return 0, fmt.Errorf("verify: slot %d reads back different bytes", b[i].Slot)
			}
		}
	}
	return float64(ff.pages) / writeTime.Seconds(), nil
}

// measureReads runs one worker per in-flight request, each issuing
// requests of --batch random slots back to back for phase.
func measureReads(ctx context.Context, tr fabric.Transport, ff fetchFlags, phase time.Duration) ([]time.Duration, uint64, time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var pages uint64
	var firstErr error
	deadline := time.Now().Add(phase)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range ff.inflight {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0x5eed))
			b := make([]fabric.SlotIO, ff.batch)
			for i := range b {
				b[i].Buf = make([]byte, fabric.PageSize)
			}
			lat := make([]time.Duration, 0, 1<<16)
			var n uint64
			var err error
			for time.Now().Before(deadline) {
				for i := range b {
					b[i].Slot = rng.Uint64N(ff.pages)
				}
				t0 := time.Now()
				if err = tr.ReadSlots(ctx, b); err != nil {
					break
				}
				lat = append(lat, time.Since(t0))
				n += uint64(len(b))
			}
			mu.Lock()
			all = append(all, lat...)
			pages += n
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, 0, 0, fmt.Errorf("read: %w", firstErr)
	}
	return all, pages, elapsed, nil
}

// benchRounds is how many times the read phase and the baselines alternate:
// other load on the machine then weighs on both sides of each ratio alike.
const benchRounds = 5

// measureInterleaved alternates read phases with the baselines, measured on
// a second authenticated connection to the same sub-host: a bare stream
// (the server writes raw bytes, the client reads them into 1 MiB buffers)
// and a bare ping-pong shaped like a one-page read (a 32-byte request, a
// one-page reply). Ratios are taken per round; the medians are reported.
func measureInterleaved(ctx context.Context, tr fabric.Transport, ff fetchFlags, key []byte, res *fetchResult) error {
	c, err := control.Dial(ctx, res.Subhost, ff.vm, key, control.DialOptions{})
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	defer c.Close()
	if _, err := c.BaselinePing(200, 32, fabric.PageSize); err != nil { // warm-up
		return fmt.Errorf("baseline ping: %w", err)
	}
	var lat []time.Duration
	var pages uint64
	var elapsed time.Duration
	var streams, streamRatios, rtts []float64
	for range benchRounds {
		l, n, d, err := measureReads(ctx, tr, ff, ff.duration/benchRounds)
		if err != nil {
			return err
		}
		lat, pages, elapsed = append(lat, l...), pages+n, elapsed+d
		bps := float64(n) * fabric.PageSize / d.Seconds()
		// Stream about as long as the read phase took.
		total := uint64(min(max(bps*d.Seconds(), 64<<20), 2<<30))
		stream, err := c.BaselineStream(total, 1<<20)
		if err != nil {
			return fmt.Errorf("baseline stream: %w", err)
		}
		ping, err := c.BaselinePing(1000, 32, fabric.PageSize)
		if err != nil {
			return fmt.Errorf("baseline ping: %w", err)
		}
		streams = append(streams, stream)
		streamRatios = append(streamRatios, bps/stream)
		rtts = append(rtts, percentileUS(ping, 0.50))
	}
	res.Seconds = elapsed.Seconds()
	res.Requests = len(lat)
	res.PagesPerS = float64(pages) / elapsed.Seconds()
	res.BytesPerS = res.PagesPerS * fabric.PageSize
	res.P50us, res.P99us = percentileUS(lat, 0.50), percentileUS(lat, 0.99)
	res.BaseStream, res.StreamRatio, res.BaseRTTus = median(streams), median(streamRatios), median(rtts)
	res.LatencyRatio = res.P50us / res.BaseRTTus
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentileUS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(int(q*float64(len(s))), len(s)-1)
	return float64(s[i].Nanoseconds()) / 1e3
}

func printFetch(out io.Writer, r fetchResult) error {
	if jsonOutput {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	where := r.Subhost
	if r.InProcess {
		where += " (in-process)"
	}
	fmt.Fprintf(w, "transport\t%s\t%s\n", r.Transport, where)
	fmt.Fprintf(w, "shape\t%d pages, batch %d, inflight %d\t%d requests in %.2fs\n", r.Pages, r.Batch, r.InFlight, r.Requests, r.Seconds)
	fmt.Fprintf(w, "pages/s\t%.0f\t\n", r.PagesPerS)
	fmt.Fprintf(w, "bytes/s\t%s\tbaseline stream %s (ratio %.2f)\n", rate(r.BytesPerS), rate(r.BaseStream), r.StreamRatio)
	fmt.Fprintf(w, "latency p50\t%.1f us\tbaseline rtt %.1f us (ratio %.2f)\n", r.P50us, r.BaseRTTus, r.LatencyRatio)
	fmt.Fprintf(w, "latency p99\t%.1f us\t\n", r.P99us)
	fmt.Fprintf(w, "fill\t%.0f pages/s\t\n", r.WritePagesPer)
	return w.Flush()
}

func rate(bps float64) string { return fmt.Sprintf("%.2f GB/s", bps/1e9) }
