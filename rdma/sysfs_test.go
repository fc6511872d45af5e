package rdma

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func TestDiscoverAtFakeSysfs(t *testing.T) {
	devs, err := DiscoverAt(filepath.Join("testdata", "sysfs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 || devs[0].Name != "mlx5_0" || devs[1].Name != "rxe0" || devs[2].Name != "rxe1" {
		t.Fatalf("devices = %+v, want mlx5_0, rxe0, rxe1 in order", devs)
	}
	rxe := devs[1]
	if len(rxe.Ports) != 1 {
		t.Fatalf("rxe0 ports = %+v", rxe.Ports)
	}
	p := rxe.Ports[0]
	if p.Num != 1 || p.State != "ACTIVE" || !p.Active() || p.ActiveMTU != 1024 || p.LinkLayer != "Ethernet" {
		t.Fatalf("rxe0 port = %+v", p)
	}
	if len(p.GIDs) != 4 {
		t.Fatalf("rxe0 gids = %+v, want 4 (the zero entry skipped)", p.GIDs)
	}
	g, ok := p.UsableGID()
	if !ok || g.Index != 3 || g.IP != "192.0.2.1" || g.Netdev != "v0" || g.Type != "RoCE v2" {
		t.Fatalf("usable gid = %+v %v, want index 3 192.0.2.1 on v0", g, ok)
	}
	if p.GIDs[0].IP != "" || p.GIDs[0].RoCEv2IPv4() {
		t.Fatalf("link-local gid reported as IPv4: %+v", p.GIDs[0])
	}
	if devs[0].Ports[0].Active() || devs[0].Ports[0].ActiveMTU != 4096 {
		t.Fatalf("mlx5_0 port = %+v", devs[0].Ports[0])
	}
	if devs[2].Ports[0].ActiveMTU != 1024 || len(devs[2].Ports[0].GIDs) != 1 || devs[2].Ports[0].GIDs[0].Netdev != "v1" {
		t.Fatalf("rxe1 port (garbage mtu, derived from v1) = %+v", devs[2].Ports[0])
	}
}

func TestIBMTU(t *testing.T) {
	for eth, want := range map[int]int{1500: 1024, 9000: 4096, 4200: 4096, 2200: 2048, 300: 0, 0: 0} {
		if got := IBMTU(eth); got != want {
			t.Errorf("IBMTU(%d) = %d, want %d", eth, got, want)
		}
	}
}

func TestDiscoverAtMissingRoot(t *testing.T) {
	devs, err := DiscoverAt(filepath.Join(t.TempDir(), "nope"))
	if err != nil || len(devs) != 0 {
		t.Fatalf("missing root: %v %v, want no devices and no error", devs, err)
	}
}

func TestParseStateAndMTU(t *testing.T) {
	for in, want := range map[string]string{"4: ACTIVE": "ACTIVE", "1: DOWN": "DOWN", "ACTIVE": "ACTIVE", "": ""} {
		if got := ParseState(in); got != want {
			t.Errorf("ParseState(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]int{"1024 (3)": 1024, "4096 (5)": 4096, "": 0, "x (1)": 0, "-5": 0} {
		if got := ParseMTU(in); got != want {
			t.Errorf("ParseMTU(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestChoose(t *testing.T) {
	devs, err := DiscoverAt(filepath.Join("testdata", "sysfs"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Choose("auto", devs, true)
	if err != nil || c.Transport != KindRDMA || c.Device != "rxe0" || c.GIDIndex != 3 || c.Netdev != "v0" {
		t.Fatalf("auto = %+v %v, want rdma on rxe0 gid 3", c, err)
	}
	if c, _ := Choose("auto", devs, false); c.Transport != KindTCP {
		t.Fatalf("auto without verbs = %+v, want tcp", c)
	}
	if c, _ := Choose("auto", nil, true); c.Transport != KindTCP || c.Reason != "no RDMA device on this host" {
		t.Fatalf("auto with no devices = %+v", c)
	}
	if c, _ := Choose("off", devs, true); c.Transport != KindTCP {
		t.Fatalf("off = %+v", c)
	}
	if c, err := Choose("rxe0", devs, true); err != nil || c.Device != "rxe0" {
		t.Fatalf("rxe0 = %+v %v", c, err)
	}
	for _, name := range []string{"mlx5_0", "rxe1", "nosuch"} {
		if _, err := Choose(name, devs, true); !errors.Is(err, fabric.ErrNoRDMA) {
			t.Errorf("Choose(%q) err = %v, want ErrNoRDMA", name, err)
		}
	}
	if _, err := Choose("rxe0", devs, false); !errors.Is(err, fabric.ErrNoRDMA) {
		t.Errorf("named device without verbs: err = %v, want ErrNoRDMA", err)
	}
}
