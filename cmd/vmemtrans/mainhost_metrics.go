package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
)

// mainhostMetrics exposes the runtime's counters (vmemtrans_runtime_*) and
// the control socket's (vmemtrans_vmsock_*).
func mainhostMetrics(rt *kvmhost.Runtime, srv *vmsock.Server) *prometheus.Registry {
	s := func(f func(vmsock.Stats) uint64) func() float64 {
		return func() float64 { return float64(f(srv.Stats())) }
	}
	reg := newMetricsRegistry("vmemtrans_vmsock", []metric{
		{name: "connections_total", help: "Control-socket clients served.", value: s(func(s vmsock.Stats) uint64 { return s.Connections })},
		{name: "refused_total", help: "Control-socket clients of another user refused.", value: s(func(s vmsock.Stats) uint64 { return s.Refused })},
		{name: "connections_active", help: "Control-socket connections open now.", gauge: true,
			value: func() float64 { return float64(srv.Stats().Active) }},
		{name: "requests_total", help: "Control-socket requests answered.", value: s(func(s vmsock.Stats) uint64 { return s.Requests })},
		{name: "resident_requests_total", help: "Make-resident (self-paging) requests.", value: s(func(s vmsock.Stats) uint64 { return s.ResidentRequests })},
		{name: "resident_gfns_total", help: "GFNs made resident for control-socket clients.", value: s(func(s vmsock.Stats) uint64 { return s.ResidentGFNs })},
		{name: "failed_gfns_total", help: "GFNs whose make-resident failed.", value: s(func(s vmsock.Stats) uint64 { return s.FailedGFNs })},
		{name: "protocol_errors_total", help: "Control-socket connections closed for a malformed frame.", value: s(func(s vmsock.Stats) uint64 { return s.ProtocolErrors })},
	})
	reg.MustRegister(rt.Collectors()...)
	return reg
}
