//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// bench memory runs end to end against an in-process sub-host and reports
// every field of its contract, with the local reads through the SIGBUS view.
func TestBenchMemoryInProcess(t *testing.T) {
	log = zerolog.Nop()
	jsonOutput = true
	defer func() { jsonOutput = false }()
	var out bytes.Buffer
	mf := memFlags{localPages: 512, remotePages: 256, batch: 8, runs: 2, phase: 100 * time.Millisecond, rdma: "off"}
	if err := runBenchMemory(context.Background(), &out, mf); err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"local_pages_per_s", "bare_copy_pages_per_s", "local_ratio", "proxy_pages_per_s",
		"transport_pages_per_s", "proxy_ratio", "adaptive_hit_pages_per_s"} {
		if v, ok := r[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, r[k])
		}
		if s, ok := r["spread"].(map[string]any)[k].(map[string]any); !ok || s["min"].(float64) > s["max"].(float64) {
			t.Errorf("spread of %s = %v", k, s)
		}
	}
	if r["transport"] != "tcp" || r["local_mode"] != "sigbus-view" {
		t.Errorf("transport %v, local mode %v", r["transport"], r["local_mode"])
	}
}

func TestBenchMemoryRejectsBadFlags(t *testing.T) {
	if err := runBenchMemory(context.Background(), &bytes.Buffer{}, memFlags{batch: 0, runs: 1}); err == nil {
		t.Fatal("zero pages and batch accepted")
	}
}
