package kvmhost

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the runtime's counters as Prometheus metrics
// (vmemtrans_runtime_*), read from Stats at scrape time. Register them on
// the registry the caller serves on /metrics.
func (r *Runtime) Collectors() []prometheus.Collector {
	counter := func(name, help string, get func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "vmemtrans", Subsystem: "runtime", Name: name, Help: help},
			func() float64 { return float64(get(r.Stats())) })
	}
	gauge := func(name, help string, get func(Stats) uint64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "vmemtrans", Subsystem: "runtime", Name: name, Help: help},
			func() float64 { return float64(get(r.Stats())) })
	}
	return []prometheus.Collector{
		counter("faults_total", "Missing-page faults handled.", func(s Stats) uint64 { return s.Faults }),
		counter("wp_faults_total", "Write-protect faults held during evictions.", func(s Stats) uint64 { return s.WPFaults }),
		counter("page_ins_total", "Pages brought in from sub-hosts.", func(s Stats) uint64 { return s.PageIns }),
		counter("page_outs_total", "Pages written out to sub-hosts.", func(s Stats) uint64 { return s.PageOuts }),
		counter("exchange_requests_total", "Self-paging requests (MakeResident).", func(s Stats) uint64 { return s.ExchangeRequests }),
		counter("exchanged_pages_total", "Pages paged in by self-paging requests.", func(s Stats) uint64 { return s.ExchangedPages }),
		counter("zero_fills_total", "Faults on frames never written, filled with zeros.", func(s Stats) uint64 { return s.ZeroFills }),
		counter("page_in_errors_total", "Page-ins that failed.", func(s Stats) uint64 { return s.PageInErrors }),
		counter("page_out_errors_total", "Page-outs that failed.", func(s Stats) uint64 { return s.PageOutErrors }),
		counter("workload_writes_total", "Pages the synthetic workload stamped.", func(s Stats) uint64 { return s.WorkloadWrites }),
		counter("workload_reads_total", "Pages the synthetic workload read.", func(s Stats) uint64 { return s.WorkloadReads }),
		gauge("resident_pages", "Backed pages resident in main-host RAM.", func(s Stats) uint64 { return s.ResidentPages }),
		gauge("resident_limit_pages", "Most backed pages kept resident.", func(s Stats) uint64 { return s.ResidentLimit }),
		gauge("remote_pages", "Pages held by sub-hosts.", func(s Stats) uint64 { return s.RemotePages }),
		gauge("backed_pages", "Pages the guest layout backs.", func(s Stats) uint64 { return s.BackedPages }),
		gauge("empty_pages", "Pages of zeros at split, held nowhere until written.", func(s Stats) uint64 { return s.EmptyPages }),
	}
}

// Register registers Collectors on reg.
func (r *Runtime) Register(reg prometheus.Registerer) error {
	for _, c := range r.Collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
