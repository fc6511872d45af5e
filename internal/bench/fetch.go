package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// FetchConfig is the shape of a fetch benchmark against one sub-host.
type FetchConfig struct {
	Subhost  string        // control address; the baselines connect here too
	VM       string        // VM id of the scratch region
	Key      []byte        // the VM's pre-shared key (for the baseline connection)
	Pages    uint64        // pages in the scratch region: the working set
	Batch    int           // slots per request
	InFlight int           // requests outstanding at once
	Duration time.Duration // total time of the read phases
}

// Check rejects shapes the benchmark cannot run.
func (c FetchConfig) Check() error {
	if c.Batch < 1 || c.Batch > wire.MaxSlotsPerRequest {
		return fmt.Errorf("batch %d: want 1..%d", c.Batch, wire.MaxSlotsPerRequest)
	}
	if c.InFlight < 1 || c.Pages < uint64(c.Batch) {
		return fmt.Errorf("inflight %d, pages %d: need inflight >= 1 and pages >= batch", c.InFlight, c.Pages)
	}
	return nil
}

// FetchResult is the outcome of Fetch; the JSON names are the contract
// benchmark scripts parse.
type FetchResult struct {
	Transport    string  `json:"transport"`
	Subhost      string  `json:"subhost"`
	InProcess    bool    `json:"in_process_subhost"`
	Pages        uint64  `json:"pages"`
	Batch        int     `json:"batch"`
	InFlight     int     `json:"inflight"`
	Seconds      float64 `json:"seconds"`
	Requests     int     `json:"requests"`
	PagesPerS    float64 `json:"pages_per_s"`
	BytesPerS    float64 `json:"bytes_per_s"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	BaseStream   float64 `json:"baseline_stream_bytes_per_s"`
	BaseRTTus    float64 `json:"baseline_rtt_us"`
	StreamRatio  float64 `json:"stream_ratio"`  // bytes_per_s / baseline_stream_bytes_per_s
	LatencyRatio float64 `json:"latency_ratio"` // p50_us / baseline_rtt_us
	// Per round (the read phase and the baselines right after it): the
	// spread behind the medians above.
	StreamRatios  []float64 `json:"stream_ratios"`
	LatencyRatios []float64 `json:"latency_ratios"`
	WritePagesPer float64   `json:"fill_pages_per_s"` // the fill (write) phase
}

// Fetch fills the first cfg.Pages slots of tr's region, reads them back once
// to verify, then reads random batches for cfg.Duration, interleaved with
// bare-TCP baselines measured on a second authenticated connection to the
// same sub-host.
func Fetch(ctx context.Context, tr fabric.Transport, cfg FetchConfig) (FetchResult, error) {
	res := FetchResult{Transport: tr.Kind(), Subhost: cfg.Subhost, Pages: cfg.Pages, Batch: cfg.Batch, InFlight: cfg.InFlight}
	if err := cfg.Check(); err != nil {
		return res, err
	}
	if tr.Slots() < cfg.Pages {
		return res, fmt.Errorf("region of vm %q has %d slots, fewer than %d pages", cfg.VM, tr.Slots(), cfg.Pages)
	}
	var err error
	if res.WritePagesPer, err = fillAndVerify(ctx, tr, cfg.Pages); err != nil {
		return res, err
	}
	return res, measureInterleaved(ctx, tr, cfg, &res)
}

// FillPattern is the content of a slot during the bench, so reads are checked.
func FillPattern(buf []byte, slot uint64) {
	for i := 0; i < len(buf); i += 8 {
		v := slot*0x9e3779b97f4a7c15 + uint64(i)
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
}

// fillAndVerify writes every page of the working set, then reads it all
// back once and compares: a benchmark of wrong data is worthless.
func fillAndVerify(ctx context.Context, tr fabric.Transport, pages uint64) (float64, error) {
	const chunk = 4096
	want := make([]byte, fabric.PageSize)
	var writeTime time.Duration
	for base := uint64(0); base < pages; base += chunk {
		n := min(chunk, pages-base)
		b := make([]fabric.SlotIO, n)
		for i := range b {
			b[i] = fabric.SlotIO{Slot: base + uint64(i), Buf: make([]byte, fabric.PageSize)}
			FillPattern(b[i].Buf, b[i].Slot)
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
			FillPattern(want, b[i].Slot)
			if string(want) != string(b[i].Buf) {
				return 0, fmt.Errorf("verify: slot %d reads back different bytes", b[i].Slot)
			}
		}
	}
	return float64(pages) / writeTime.Seconds(), nil
}

// measureReads runs one worker per in-flight request, each issuing
// requests of cfg.Batch random slots back to back for phase.
func measureReads(ctx context.Context, tr fabric.Transport, cfg FetchConfig, phase time.Duration) ([]time.Duration, uint64, time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var pages uint64
	var firstErr error
	deadline := time.Now().Add(phase)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range cfg.InFlight {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 0x5eed))
			b := make([]fabric.SlotIO, cfg.Batch)
			for i := range b {
				b[i].Buf = make([]byte, fabric.PageSize)
			}
			lat := make([]time.Duration, 0, 1<<16)
			var n uint64
			var err error
			for time.Now().Before(deadline) {
				for i := range b {
					b[i].Slot = rng.Uint64N(cfg.Pages)
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

// Rounds is how many times the read phase and the baselines alternate:
// other load on the machine then weighs on both sides of each ratio alike.
const Rounds = 5

// measureInterleaved alternates read phases with the baselines, measured on
// a second authenticated connection to the same sub-host: a bare stream
// (the server writes raw bytes, the client reads them into 1 MiB buffers)
// and a bare ping-pong shaped like a one-page read (a 32-byte request, a
// one-page reply). Ratios are taken per round; the medians are reported.
func measureInterleaved(ctx context.Context, tr fabric.Transport, cfg FetchConfig, res *FetchResult) error {
	c, err := control.Dial(ctx, cfg.Subhost, cfg.VM, cfg.Key, control.DialOptions{})
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
	for range Rounds {
		l, n, d, err := measureReads(ctx, tr, cfg, cfg.Duration/Rounds)
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
		rtt := Micros(Percentile(ping, 0.50))
		streams = append(streams, stream)
		streamRatios = append(streamRatios, bps/stream)
		rtts = append(rtts, rtt)
		res.LatencyRatios = append(res.LatencyRatios, Micros(Percentile(l, 0.50))/rtt)
	}
	res.Seconds = elapsed.Seconds()
	res.Requests = len(lat)
	res.PagesPerS = float64(pages) / elapsed.Seconds()
	res.BytesPerS = res.PagesPerS * fabric.PageSize
	res.P50us, res.P99us = Micros(Percentile(lat, 0.50)), Micros(Percentile(lat, 0.99))
	res.BaseStream, res.StreamRatio, res.BaseRTTus = Median(streams), Median(streamRatios), Median(rtts)
	res.StreamRatios = streamRatios
	res.LatencyRatio = res.P50us / res.BaseRTTus
	return nil
}
