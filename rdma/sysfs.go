package rdma

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/Mellanox/rdmamap"
)

// SysfsRoot is where the kernel publishes RDMA devices.
const SysfsRoot = "/sys/class/infiniband"

// Discover lists the RDMA devices of this host. A host without RDMA yields
// an empty list and no error.
func Discover() ([]Device, error) {
	return discoverIn(SysfsRoot, rdmamap.GetRdmaDeviceList())
}

// DiscoverAt reads every device found under root, a directory laid out
// like /sys/class/infiniband (tests point it at a fake tree).
func DiscoverAt(root string) ([]Device, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rdma sysfs %s: %w", root, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return discoverIn(root, names)
}

func discoverIn(root string, names []string) ([]Device, error) {
	sort.Strings(names)
	devs := make([]Device, 0, len(names))
	for _, n := range names {
		d, err := readDevice(filepath.Join(root, n), n)
		if err != nil {
			return devs, err
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func readDevice(dir, name string) (Device, error) {
	d := Device{Name: name, Ports: []Port{}}
	ents, err := os.ReadDir(filepath.Join(dir, "ports"))
	if err != nil {
		return d, fmt.Errorf("rdma device %s: ports: %w", name, err)
	}
	for _, e := range ents {
		num, err := strconv.Atoi(e.Name())
		if err != nil || num < 1 {
			continue
		}
		p, err := readPort(filepath.Join(dir, "ports", e.Name()), num)
		if err != nil {
			return d, fmt.Errorf("rdma device %s: %w", name, err)
		}
		d.Ports = append(d.Ports, p)
	}
	sort.Slice(d.Ports, func(i, j int) bool { return d.Ports[i].Num < d.Ports[j].Num })
	return d, nil
}

func readPort(dir string, num int) (Port, error) {
	p := Port{Num: num, GIDs: []GID{}}
	st, err := readTrim(filepath.Join(dir, "state"))
	if err != nil {
		return p, fmt.Errorf("port %d state: %w", num, err)
	}
	p.State = ParseState(st)
	if s, err := readTrim(filepath.Join(dir, "active_mtu")); err == nil {
		p.ActiveMTU = ParseMTU(s)
	}
	if s, err := readTrim(filepath.Join(dir, "link_layer")); err == nil {
		p.LinkLayer = s
	}
	ents, err := os.ReadDir(filepath.Join(dir, "gids"))
	if err != nil {
		return p, nil // a port without a GID table (not RoCE/IB) is still listed
	}
	for _, e := range ents {
		idx, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		g, ok := readGID(dir, idx)
		if ok {
			p.GIDs = append(p.GIDs, g)
		}
	}
	sort.Slice(p.GIDs, func(i, j int) bool { return p.GIDs[i].Index < p.GIDs[j].Index })
	if p.ActiveMTU == 0 {
		p.ActiveMTU = roceMTU(dir, p.GIDs)
	}
	return p, nil
}

// readGID returns a populated GID entry; empty slots (all zero, or whose
// type file the kernel refuses to read) are skipped.
func readGID(port string, idx int) (GID, bool) {
	i := strconv.Itoa(idx)
	raw, err := readTrim(filepath.Join(port, "gids", i))
	if err != nil {
		return GID{}, false
	}
	ip := net.ParseIP(raw)
	if ip == nil || ip.IsUnspecified() {
		return GID{}, false
	}
	typ, err := readTrim(filepath.Join(port, "gid_attrs", "types", i))
	if err != nil || typ == "" {
		return GID{}, false
	}
	nd, _ := readTrim(filepath.Join(port, "gid_attrs", "ndevs", i))
	g := GID{Index: idx, GID: raw, Type: typ, Netdev: nd}
	if v4 := ip.To4(); v4 != nil {
		g.IP = v4.String()
	}
	return g, true
}

// roceMTU derives a RoCE port's MTU from its netdev's when sysfs has no
// active_mtu (mainline kernels publish none): the largest IB MTU that fits
// the Ethernet MTU less the RoCE v2 headers, as rxe computes it.
func roceMTU(portDir string, gids []GID) int {
	for _, g := range gids {
		if g.Netdev == "" {
			continue
		}
		// portDir is .../class/infiniband/DEV/ports/N; the netdev lives in .../class/net
		net := filepath.Join(portDir, "..", "..", "..", "..", "net", g.Netdev, "mtu")
		s, err := readTrim(net)
		if err != nil {
			return 0
		}
		return IBMTU(ParseMTU(s))
	}
	return 0
}

// IBMTU is the largest IB MTU (256..4096) that an Ethernet MTU carries
// after RoCE v2 headers, or 0 if none fits.
func IBMTU(ethMTU int) int {
	avail := ethMTU - 96
	for m := 4096; m >= 256; m /= 2 {
		if avail >= m {
			return m
		}
	}
	return 0
}

// ParseState turns sysfs "4: ACTIVE" into "ACTIVE".
func ParseState(s string) string {
	if _, after, ok := strings.Cut(s, ":"); ok {
		return strings.TrimSpace(after)
	}
	return strings.TrimSpace(s)
}

// ParseMTU turns sysfs "1024 (3)" into 1024; unparsable input gives 0.
func ParseMTU(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
