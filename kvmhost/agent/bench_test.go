package agent

import (
	"context"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// The protocol's own cost per request (unix socket, HMAC-tagged frames,
// a toucher that does nothing): what the agent adds to the guest's page-ins.
func BenchmarkMakeResident(b *testing.B) {
	for _, n := range []int{1, 64, 1024} {
		b.Run(itoaBench(n), func(b *testing.B) {
			srv := newTestServer(b, &fakeToucher{ramEnd: 1 << 30}, nil)
			c, err := dialTest(b, listen(b, srv), func(c *ClientConfig) { c.Timeout, c.SlowAfter = 30*time.Second, 30*time.Second })
			if err != nil {
				b.Fatal(err)
			}
			gfns := make([]fabric.GFN, n)
			for i := range gfns {
				gfns[i] = fabric.GFN(i)
			}
			b.ResetTimer()
			for b.Loop() {
				if errs := c.MakeResident(context.Background(), gfns); errs[0] != nil {
					b.Fatal(errs[0])
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "gfns/s")
		})
	}
}

func itoaBench(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s + "gfns"
}
