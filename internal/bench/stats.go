package bench

import (
	"slices"
	"time"
)

// Summary describes repeated runs of one measurement.
type Summary struct {
	Runs   int     `json:"runs"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Summarize gives the run count, minimum, median and maximum of v; the
// zero Summary for no runs.
func Summarize(v []float64) Summary {
	if len(v) == 0 {
		return Summary{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return Summary{Runs: len(s), Min: s[0], Median: s[len(s)/2], Max: s[len(s)-1]}
}

// Median is the middle value of v (the upper of the two for an even count),
// 0 for none.
func Median(v []float64) float64 { return Summarize(v).Median }

// Percentile is the q-quantile (0..1) of d by the nearest-rank rule, 0 for
// no samples.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// Micros is d in microseconds, the unit latencies are reported in.
func Micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
