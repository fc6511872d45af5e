package bench

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	if s := Summarize(v); s != (Summary{Runs: 5, Min: 1, Median: 3, Max: 5}) {
		t.Errorf("summary %+v", s)
	}
	if v[0] != 5 {
		t.Error("Summarize reordered its input")
	}
	if Median([]float64{1, 2, 3, 4}) != 3 || Median(nil) != 0 || Summarize(nil) != (Summary{}) {
		t.Error("median of an even count or of nothing")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	if p := Percentile(d, 0.5); p != 51*time.Microsecond {
		t.Errorf("p50 %v", p)
	}
	if p := Percentile(d, 0.99); p != 100*time.Microsecond {
		t.Errorf("p99 %v", p)
	}
	if p := Percentile(d, 1); p != 100*time.Microsecond {
		t.Errorf("p100 %v", p)
	}
	if Percentile(nil, 0.5) != 0 || Micros(1500*time.Nanosecond) != 1.5 {
		t.Error("empty percentile or micros")
	}
}
