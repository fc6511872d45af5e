package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
)

// Fetch over an in-process transport, with the baselines against an
// in-process sub-host: every figure of the result is measured.
func TestFetch(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	sh := controltest.Start(t, controltest.SharedKey(t, key))
	tr := fabrictest.NewMemTransport(512, 0)
	defer tr.Close()
	cfg := FetchConfig{Subhost: sh.Addr, VM: "bench", Key: key, Pages: 512, Batch: 16, InFlight: 2, Duration: 100 * time.Millisecond}
	res, err := Fetch(context.Background(), tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"pages/s": res.PagesPerS, "bytes/s": res.BytesPerS, "p50": res.P50us,
		"p99": res.P99us, "stream": res.BaseStream, "rtt": res.BaseRTTus, "fill": res.WritePagesPer} {
		if v <= 0 {
			t.Errorf("%s = %v, want a positive figure", name, v)
		}
	}
	if res.Transport != "mem" || res.Requests == 0 || res.P99us < res.P50us {
		t.Errorf("result %+v", res)
	}
	// The fill was verified: a region too small for the working set is refused.
	cfg.Pages = 1024
	if _, err := Fetch(context.Background(), tr, cfg); err == nil || !strings.Contains(err.Error(), "fewer than") {
		t.Errorf("a working set beyond the region: %v", err)
	}
}

func TestFetchConfigCheck(t *testing.T) {
	for _, c := range []FetchConfig{
		{Pages: 10, Batch: 0, InFlight: 1},
		{Pages: 10, Batch: 4096, InFlight: 1},
		{Pages: 10, Batch: 64, InFlight: 1},
		{Pages: 10, Batch: 1, InFlight: 0},
	} {
		if c.Check() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
