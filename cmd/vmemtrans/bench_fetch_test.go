package main

import (
	"github.com/vmemtrans/vmemtrans/internal/bench"

	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// bench fetch with no sub-host runs end to end against an in-process one
// and reports every field of its contract.
func TestBenchFetchInProcess(t *testing.T) {
	log = zerolog.Nop()
	jsonOutput = true
	defer func() { jsonOutput = false }()
	var out bytes.Buffer
	ff := fetchFlags{vm: "bench", pages: 1024, batch: 64, inflight: 2, duration: 250 * time.Millisecond}
	if err := runFetch(context.Background(), &out, ff); err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"pages_per_s", "bytes_per_s", "p50_us", "p99_us", "baseline_stream_bytes_per_s", "baseline_rtt_us", "stream_ratio", "latency_ratio"} {
		if v, ok := r[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, r[k])
		}
	}
	for _, k := range []string{"stream_ratios", "latency_ratios"} {
		if v, ok := r[k].([]any); !ok || len(v) != bench.Rounds {
			t.Errorf("%s = %v, want one ratio per round (%d)", k, r[k], bench.Rounds)
		}
	}
	if r["transport"] != "tcp" || r["in_process_subhost"] != true {
		t.Errorf("transport %v, in-process %v", r["transport"], r["in_process_subhost"])
	}
}

func TestBenchFetchHumanTable(t *testing.T) {
	log = zerolog.Nop()
	var out bytes.Buffer
	ff := fetchFlags{vm: "bench", pages: 256, batch: 1, inflight: 1, duration: 100 * time.Millisecond}
	if err := runFetch(context.Background(), &out, ff); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pages/s", "baseline stream", "baseline rtt", "latency p99"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchFetchRejectsBadShapes(t *testing.T) {
	for _, ff := range []fetchFlags{
		{vm: "bench", pages: 10, batch: 0, inflight: 1},
		{vm: "bench", pages: 10, batch: 4096, inflight: 1},
		{vm: "bench", pages: 10, batch: 64, inflight: 1},
		{vm: "bench", pages: 10, batch: 1, inflight: 1, subhost: "127.0.0.1:1"},
	} {
		if err := runFetch(context.Background(), &bytes.Buffer{}, ff); err == nil {
			t.Errorf("runFetch(%+v) accepted", ff)
		}
	}
}
