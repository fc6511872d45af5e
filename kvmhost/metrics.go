package kvmhost

import "github.com/prometheus/client_golang/prometheus"

// statField is one of the runtime's counters, by its exported name.
type statField struct {
	name, help string
	gauge      bool
	get        func(Stats) uint64
}

var statFields = []statField{
	{"faults_total", "Missing-page faults handled.", false, func(s Stats) uint64 { return s.Faults }},
	{"wp_faults_total", "Write-protect faults held during evictions.", false, func(s Stats) uint64 { return s.WPFaults }},
	{"page_ins_total", "Pages brought in from sub-hosts.", false, func(s Stats) uint64 { return s.PageIns }},
	{"page_outs_total", "Pages written out to sub-hosts.", false, func(s Stats) uint64 { return s.PageOuts }},
	{"exchange_requests_total", "Self-paging requests (MakeResident).", false, func(s Stats) uint64 { return s.ExchangeRequests }},
	{"exchanged_pages_total", "Pages paged in by self-paging requests.", false, func(s Stats) uint64 { return s.ExchangedPages }},
	{"zero_fills_total", "Faults on frames never written, filled with zeros.", false, func(s Stats) uint64 { return s.ZeroFills }},
	{"page_in_errors_total", "Page-ins that failed.", false, func(s Stats) uint64 { return s.PageInErrors }},
	{"page_out_errors_total", "Page-outs that failed.", false, func(s Stats) uint64 { return s.PageOutErrors }},
	{"workload_writes_total", "Pages the synthetic workload stamped.", false, func(s Stats) uint64 { return s.WorkloadWrites }},
	{"workload_reads_total", "Pages the synthetic workload read.", false, func(s Stats) uint64 { return s.WorkloadReads }},
	{"resident_pages", "Backed pages resident in main-host RAM.", true, func(s Stats) uint64 { return s.ResidentPages }},
	{"resident_limit_pages", "Most backed pages kept resident.", true, func(s Stats) uint64 { return s.ResidentLimit }},
	{"remote_pages", "Pages held by sub-hosts.", true, func(s Stats) uint64 { return s.RemotePages }},
	{"backed_pages", "Pages the guest layout backs.", true, func(s Stats) uint64 { return s.BackedPages }},
	{"empty_pages", "Pages of zeros at split, held nowhere until written.", true, func(s Stats) uint64 { return s.EmptyPages }},
}

// Counters are the runtime's counters by the names of its metrics
// (without the vmemtrans_runtime_ prefix): what its control socket hands
// an IDS that asks for stats.
func (r *Runtime) Counters() map[string]uint64 {
	s := r.Stats()
	out := make(map[string]uint64, len(statFields))
	for _, f := range statFields {
		out[f.name] = f.get(s)
	}
	return out
}

// Collectors are the runtime's counters as Prometheus metrics
// (vmemtrans_runtime_*), read from Stats at scrape time. Register them on
// the registry the caller serves on /metrics.
func (r *Runtime) Collectors() []prometheus.Collector {
	out := make([]prometheus.Collector, 0, len(statFields))
	for _, f := range statFields {
		get := func() float64 { return float64(f.get(r.Stats())) }
		if f.gauge {
			out = append(out, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "vmemtrans", Subsystem: "runtime", Name: f.name, Help: f.help}, get))
		} else {
			out = append(out, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "vmemtrans", Subsystem: "runtime", Name: f.name, Help: f.help}, get))
		}
	}
	return out
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
