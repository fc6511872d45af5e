package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
)

// mainhostMetrics exposes the runtime's and the control socket's counters.
func mainhostMetrics(rt *kvmhost.Runtime, srv *vmsock.Server) *prometheus.Registry {
	r := func(f func(kvmhost.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(rt.Stats())) }
	}
	s := func(f func(vmsock.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(srv.Stats())) }
	}
	return newMetricsRegistry("vmemtrans_mainhost", []metric{
		{name: "faults_total", help: "Missing-page faults handled.", value: r(func(s kvmhost.Stats) uint64 { return s.Faults })},
		{name: "wp_faults_total", help: "Write-protect faults (writes held while their page was paged out).", value: r(func(s kvmhost.Stats) uint64 { return s.WPFaults })},
		{name: "page_ins_total", help: "Pages brought in from sub-hosts.", value: r(func(s kvmhost.Stats) uint64 { return s.PageIns })},
		{name: "page_outs_total", help: "Pages written out to sub-hosts.", value: r(func(s kvmhost.Stats) uint64 { return s.PageOuts })},
		{name: "page_in_errors_total", help: "Page-ins that failed.", value: r(func(s kvmhost.Stats) uint64 { return s.PageInErrors })},
		{name: "page_out_errors_total", help: "Page-outs that failed (the page stayed resident).", value: r(func(s kvmhost.Stats) uint64 { return s.PageOutErrors })},
		{name: "exchange_requests_total", help: "Self-paging (make-resident) requests.", value: r(func(s kvmhost.Stats) uint64 { return s.ExchangeRequests })},
		{name: "exchanged_pages_total", help: "Pages paged in by self-paging requests.", value: r(func(s kvmhost.Stats) uint64 { return s.ExchangedPages })},
		{name: "zero_fills_total", help: "Faults on never-written frames, filled with zeros.", value: r(func(s kvmhost.Stats) uint64 { return s.ZeroFills })},
		{name: "workload_reads_total", help: "Pages the synthetic workload read.", value: r(func(s kvmhost.Stats) uint64 { return s.WorkloadReads })},
		{name: "workload_writes_total", help: "Pages the synthetic workload wrote.", value: r(func(s kvmhost.Stats) uint64 { return s.WorkloadWrites })},
		{name: "resident_pages", help: "Backed pages resident now.", gauge: true, value: r(func(s kvmhost.Stats) uint64 { return s.ResidentPages })},
		{name: "resident_limit_pages", help: "The most backed pages kept resident.", gauge: true, value: r(func(s kvmhost.Stats) uint64 { return s.ResidentLimit })},
		{name: "remote_pages", help: "Pages held by sub-hosts now.", gauge: true, value: r(func(s kvmhost.Stats) uint64 { return s.RemotePages })},
		{name: "backed_pages", help: "Pages the guest layout backs.", gauge: true, value: r(func(s kvmhost.Stats) uint64 { return s.BackedPages })},
		{name: "socket_connections_total", help: "Control-socket clients served.", value: s(func(s vmsock.Stats) uint64 { return s.Connections })},
		{name: "socket_refused_total", help: "Control-socket clients of another user refused.", value: s(func(s vmsock.Stats) uint64 { return s.Refused })},
		{name: "socket_connections_active", help: "Control-socket connections open now.", gauge: true,
			value: func() float64 { return float64(srv.Stats().Active) }},
		{name: "socket_requests_total", help: "Control-socket requests answered.", value: s(func(s vmsock.Stats) uint64 { return s.Requests })},
		{name: "socket_resident_gfns_total", help: "GFNs made resident for control-socket clients.", value: s(func(s vmsock.Stats) uint64 { return s.ResidentGFNs })},
		{name: "socket_failed_gfns_total", help: "GFNs whose make-resident failed.", value: s(func(s vmsock.Stats) uint64 { return s.FailedGFNs })},
		{name: "socket_protocol_errors_total", help: "Control-socket connections closed for a malformed frame.", value: s(func(s vmsock.Stats) uint64 { return s.ProtocolErrors })},
	})
}
