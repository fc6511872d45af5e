package physmem

import "time"

// latencyReader delays every batch by a fixed time before reading.
type latencyReader struct {
	r Reader
	d time.Duration
}

// WithLatency returns a Reader that waits d before serving each batch, as a
// remote memory with a round-trip time of d would. Benchmarks use it to show
// what batching saves.
func WithLatency(r Reader, d time.Duration) Reader { return latencyReader{r: r, d: d} }

func (l latencyReader) ReadPhys(ranges []Range) error {
	time.Sleep(l.d)
	return l.r.ReadPhys(ranges)
}

func (l latencyReader) Size() uint64 { return l.r.Size() }
