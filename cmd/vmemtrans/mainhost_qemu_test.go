package main

import (
	"errors"
	"slices"
	"testing"
)

func TestQEMUCommand(t *testing.T) {
	mem := []string{"-object", "memory-backend-memfd,id=ram,size=256M,share=on", "-machine", "pc,memory-backend=ram"}
	bin, args, qmp, err := qemuCommand(mem, "/run/vm.sock.qmp")
	if err != nil || bin != "qemu-system-x86_64" || qmp != "/run/vm.sock.qmp" ||
		!slices.Equal(args[len(args)-2:], []string{"-qmp", "unix:/run/vm.sock.qmp,server=on,wait=off"}) {
		t.Fatalf("default qmp: %s %q %s %v", bin, args, qmp, err)
	}
	own := append([]string{"/opt/qemu/bin/qemu-system-x86_64"}, append(mem, "-qmp", "unix:/tmp/q.sock,server=on,wait=off")...)
	bin, args, qmp, err = qemuCommand(own, "/run/vm.sock.qmp")
	if err != nil || bin != own[0] || qmp != "/tmp/q.sock" || !slices.Equal(args, own[1:]) {
		t.Fatalf("own qmp: %s %q %s %v", bin, args, qmp, err)
	}
	if _, _, _, err := qemuCommand([]string{"-m", "1G"}, "q"); !errors.Is(err, errMainhost) {
		t.Fatalf("plain anonymous ram accepted: %v", err)
	}
	if _, _, _, err := qemuCommand([]string{"-object", "memory-backend-memfd,id=ram,size=1G"}, "q"); !errors.Is(err, errMainhost) {
		t.Fatalf("private memfd accepted: %v", err)
	}
}

func TestMainhostFlagsSource(t *testing.T) {
	for name, mf := range map[string]mainhostFlags{
		"neither": {resident: 100, vm: "vm0", socket: "s"},
		"both":    {image: "x", qemu: qemuFlags{enabled: true}, resident: 100, vm: "vm0", socket: "s"},
	} {
		if err := mf.check(); !errors.Is(err, errMainhost) {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := mainhostFlags{qemu: qemuFlags{enabled: true}, resident: 100, vm: "vm0", socket: "s"}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
}
