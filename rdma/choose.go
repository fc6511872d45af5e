package rdma

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Transport kinds a sub-host can offer.
const (
	KindRDMA = "rdma"
	KindTCP  = "tcp"
)

// Choice is the transport a sub-host offers and why.
type Choice struct {
	Transport string `json:"transport"` // KindRDMA or KindTCP
	Device    string `json:"device,omitempty"`
	Port      int    `json:"port,omitempty"`
	GIDIndex  int    `json:"gid_index,omitempty"`
	GID       string `json:"gid,omitempty"`
	Netdev    string `json:"netdev,omitempty"`
	Reason    string `json:"reason"`
}

// Choose decides the transport for mode "auto", "off" or a device name,
// given the devices found and whether this binary has the verbs binding.
// "auto" never fails: without a usable device it picks TCP and says why.
// A named device that is missing or unusable is an error.
func Choose(mode string, devs []Device, built bool) (Choice, error) {
	switch mode {
	case "off":
		return Choice{Transport: KindTCP, Reason: "rdma disabled (--rdma off)"}, nil
	case "auto", "":
		if len(devs) == 0 {
			return Choice{Transport: KindTCP, Reason: "no RDMA device on this host"}, nil
		}
		if !built {
			return Choice{Transport: KindTCP, Reason: "built without RDMA support (rebuild with -tags rdma)"}, nil
		}
		for _, d := range devs {
			if c, ok := usable(d); ok {
				c.Reason = "auto: first device with an active port and a RoCE v2 IPv4 GID"
				return c, nil
			}
		}
		return Choice{Transport: KindTCP, Reason: fmt.Sprintf("none of %d RDMA devices has an active port with a RoCE v2 IPv4 GID", len(devs))}, nil
	}
	if !built {
		return Choice{}, fmt.Errorf("rdma device %q: built without RDMA support: rebuild with -tags rdma: %w", mode, fabric.ErrNoRDMA)
	}
	for _, d := range devs {
		if d.Name != mode {
			continue
		}
		c, ok := usable(d)
		if !ok {
			return Choice{}, fmt.Errorf("rdma device %q: no active port with a RoCE v2 IPv4 GID: %w", mode, fabric.ErrNoRDMA)
		}
		c.Reason = "device named by --rdma"
		return c, nil
	}
	return Choice{}, fmt.Errorf("rdma device %q not found among %d devices: %w", mode, len(devs), fabric.ErrNoRDMA)
}

func usable(d Device) (Choice, bool) {
	for _, p := range d.Ports {
		if !p.Active() {
			continue
		}
		if g, ok := p.UsableGID(); ok {
			return Choice{Transport: KindRDMA, Device: d.Name, Port: p.Num, GIDIndex: g.Index, GID: g.GID, Netdev: g.Netdev}, true
		}
	}
	return Choice{}, false
}
