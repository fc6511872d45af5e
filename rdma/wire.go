package rdma

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// ToQPInfos encodes connection parameters as the control protocol's
// rdma-connect queue pairs: every entry carries the GID, MTU and region; the
// transport's Flags byte carries the read depth (MaxRd).
func ToQPInfos(p ConnParams) []wire.QPInfo {
	out := make([]wire.QPInfo, len(p.QPs))
	for i, q := range p.QPs {
		out[i] = wire.QPInfo{GID: p.GID, QPN: q.QPN, PSN: q.PSN, RKey: p.RKey, Addr: p.Addr,
			Length: p.Len, MTU: p.MTU, Flags: p.MaxRd}
	}
	return out
}

// FromQPInfos decodes rdma-connect queue pairs received from the peer and
// validates them; reply says whether they come from the sub-host (and must
// name a region). Entries that disagree on GID, MTU, depth or region are a
// protocol violation.
func FromQPInfos(qs []wire.QPInfo, reply bool) (ConnParams, error) {
	if len(qs) == 0 {
		return ConnParams{}, fmt.Errorf("rdma params: no queue pairs: %w", fabric.ErrProtocol)
	}
	f := qs[0]
	p := ConnParams{GID: f.GID, MaxRd: f.Flags, MTU: f.MTU, RKey: f.RKey, Addr: f.Addr, Len: f.Length}
	for i, q := range qs {
		if q.GID != f.GID || q.MTU != f.MTU || q.Flags != f.Flags || q.RKey != f.RKey || q.Addr != f.Addr || q.Length != f.Length {
			return ConnParams{}, fmt.Errorf("rdma params: queue pair %d disagrees with the first: %w", i, fabric.ErrProtocol)
		}
		p.QPs = append(p.QPs, QP{QPN: q.QPN, PSN: q.PSN})
	}
	if err := p.Validate(reply); err != nil {
		return ConnParams{}, err
	}
	return p, nil
}
