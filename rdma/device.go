package rdma

// Device is an RDMA device as sysfs describes it.
type Device struct {
	Name  string `json:"name"`
	Ports []Port `json:"ports"`
}

// Port is one port of a Device.
type Port struct {
	Num       int    `json:"port"`
	State     string `json:"state"`      // ACTIVE, DOWN, INIT, ...
	ActiveMTU int    `json:"active_mtu"` // bytes, 0 if unknown
	LinkLayer string `json:"link_layer"` // Ethernet or InfiniBand
	GIDs      []GID  `json:"gids"`
}

// GID is one populated entry of a port's GID table.
type GID struct {
	Index  int    `json:"index"`
	GID    string `json:"gid"`    // as sysfs prints it
	IP     string `json:"ip"`     // the IPv4 address of an IPv4-mapped GID, else ""
	Type   string `json:"type"`   // "RoCE v2", "IB/RoCE v1"
	Netdev string `json:"netdev"` // network device the GID belongs to, if any
}

// Active reports whether the port can carry traffic.
func (p Port) Active() bool { return p.State == "ACTIVE" }

// RoCEv2IPv4 reports whether the GID is a RoCE v2 GID of an IPv4 address,
// the kind the transport connects with.
func (g GID) RoCEv2IPv4() bool { return g.Type == "RoCE v2" && g.IP != "" }

// UsableGID returns the first RoCE v2 IPv4 GID of the port, if any.
func (p Port) UsableGID() (GID, bool) {
	for _, g := range p.GIDs {
		if g.RoCEv2IPv4() {
			return g, true
		}
	}
	return GID{}, false
}
