package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// subhostMetrics exposes the control server's counters. Pages moved by
// one-sided RDMA never reach the server and are not counted.
func subhostMetrics(srv *control.Server) *prometheus.Registry {
	st := func(f func(control.ServerStats) uint64) func() float64 {
		return func() float64 { return float64(f(srv.Stats())) }
	}
	return newMetricsRegistry("vmemtrans_subhost", []metric{
		{name: "connections_total", help: "Control connections accepted.", value: st(func(s control.ServerStats) uint64 { return s.Connections })},
		{name: "connections_active", help: "Control connections open now.", gauge: true,
			value: func() float64 { return float64(srv.Stats().ActiveConnections) }},
		{name: "auth_failures_total", help: "Connections that failed authentication.", value: st(func(s control.ServerStats) uint64 { return s.AuthFailures })},
		{name: "read_requests_total", help: "Slot read requests over TCP.", value: st(func(s control.ServerStats) uint64 { return s.ReadRequests })},
		{name: "read_pages_total", help: "Slots asked for by read requests over TCP.", value: st(func(s control.ServerStats) uint64 { return s.ReadPages })},
		{name: "read_bytes_total", help: "Bytes of the slots asked for by read requests over TCP.",
			value: st(func(s control.ServerStats) uint64 { return s.ReadPages * fabric.PageSize })},
		{name: "write_requests_total", help: "Slot write requests over TCP.", value: st(func(s control.ServerStats) uint64 { return s.WriteRequests })},
		{name: "write_pages_total", help: "Pages carried by write requests over TCP.", value: st(func(s control.ServerStats) uint64 { return s.WritePages })},
		{name: "written_bytes_total", help: "Bytes carried by write requests over TCP.",
			value: st(func(s control.ServerStats) uint64 { return s.WritePages * fabric.PageSize })},
		{name: "free_requests_total", help: "Slot free requests.", value: st(func(s control.ServerStats) uint64 { return s.FreeRequests })},
	})
}
