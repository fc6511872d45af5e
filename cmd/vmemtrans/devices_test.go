package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/rdma"
)

func TestDevicesOutput(t *testing.T) {
	devs, err := rdma.DiscoverAt("../../rdma/testdata/sysfs")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rdma.Choose("auto", devs, true)
	if err != nil {
		t.Fatal(err)
	}
	var tab bytes.Buffer
	if err := printDevicesTable(&tab, devs, c); err != nil {
		t.Fatal(err)
	}
	out := tab.String()
	for _, want := range []string{"rxe0", "0000:0000:0000:0000:0000:ffff:c000:0201", "RoCE v2", "v0", "would offer: RDMA on rxe0 port 1 (GID 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	if err := printDevicesJSON(&js, devs, c); err != nil {
		t.Fatal(err)
	}
	var rep devicesReport
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Devices) != 3 || rep.Offer.Transport != "rdma" || rep.Offer.Device != "rxe0" {
		t.Fatalf("json report = %+v", rep)
	}
}

func TestDevicesOutputNoRDMA(t *testing.T) {
	c, err := rdma.Choose("auto", nil, rdma.Built)
	if err != nil {
		t.Fatal(err)
	}
	var tab bytes.Buffer
	if err := printDevicesTable(&tab, nil, c); err != nil {
		t.Fatal(err)
	}
	if out := tab.String(); !strings.Contains(out, "no RDMA devices on this host") || !strings.Contains(out, "TCP only (no RDMA device on this host)") {
		t.Fatalf("no-RDMA table:\n%s", out)
	}
	var js bytes.Buffer
	if err := printDevicesJSON(&js, nil, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"devices": []`) || !strings.Contains(js.String(), `"transport": "tcp"`) {
		t.Fatalf("no-RDMA json:\n%s", js.String())
	}
}
