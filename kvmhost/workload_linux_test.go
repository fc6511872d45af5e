//go:build linux

package kvmhost

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// TestWorkloadContent runs the vCPU threads under a small resident limit,
// with self paging churning beside them, and checks that every page ends
// either as the image's content or, for a page the workload may write, as
// one whole stamp.
func TestWorkloadContent(t *testing.T) {
	img := testImage(256, 0, 0)
	isWritable := map[fabric.GFN]bool{}
	var writable []fabric.GFN
	for g := fabric.GFN(10); g < 250; g += 3 {
		writable = append(writable, g)
		isWritable[g] = true
	}
	rt := newTestRuntime(t, img, memSubhosts(img.layout, 2), 25, WorkloadConfig{
		Threads: 2, WriteRatio: 0.3, WritableGFNs: writable, Seed: 2,
	})
	ctx := context.Background()
	deadline := time.Now().Add(time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		rt.MakeResident(ctx, []fabric.GFN{fabric.GFN(i % 256)})
	}
	rt.stopWorkload() // the handler keeps serving the reads below
	st := rt.Stats()
	t.Logf("stats %+v", st)
	if st.WorkloadWrites < 100 || st.WorkloadReads < 100 || st.PageOuts == 0 {
		t.Fatalf("workload did too little: %+v", st)
	}
	stamped := 0
	onGuestThread(t, func() {
		buf := make([]byte, fabric.PageSize)
		for _, g := range rt.backed {
			rt.readGuest(g, buf)
			switch {
			case bytes.Equal(buf, img.page(g)):
			case isWritable[g] && VerifyStamp(g, buf):
				stamped++
			default:
				t.Errorf("gfn %d: neither the image nor a whole stamp (stamped %v, writable %v)", g, IsStamped(buf), isWritable[g])
			}
		}
	})
	if stamped == 0 {
		t.Fatal("no page was stamped")
	}
}

func TestCollectors(t *testing.T) {
	img := testImage(64, 0, 0)
	rt := newTestRuntime(t, img, memSubhosts(img.layout, 1), 50, WorkloadConfig{})
	rt.MakeResident(context.Background(), rt.backed)
	reg := prometheus.NewRegistry()
	if err := rt.Register(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP vmemtrans_runtime_exchange_requests_total Self-paging requests (MakeResident).
# TYPE vmemtrans_runtime_exchange_requests_total counter
vmemtrans_runtime_exchange_requests_total 1
# HELP vmemtrans_runtime_backed_pages Pages the guest layout backs.
# TYPE vmemtrans_runtime_backed_pages gauge
vmemtrans_runtime_backed_pages 64
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"vmemtrans_runtime_exchange_requests_total", "vmemtrans_runtime_backed_pages"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != len(rt.Collectors()) {
		t.Fatalf("%d metrics gathered (%v), want %d", n, err, len(rt.Collectors()))
	}
}
