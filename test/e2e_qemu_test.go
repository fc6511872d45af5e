package test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
	"github.com/vmemtrans/vmemtrans/introspect/qemu"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
)

// TestIntegrationMainhostQEMU runs an unmodified QEMU (firmware only, no
// boot device: SeaBIOS sets up low memory and waits) under `vmemtrans
// mainhost --qemu`: its guest RAM comes over the handoff socket, the
// runtime serves the firmware's faults with zero fills, the control socket
// describes the VM with QEMU's QMP socket, and QEMU's exit ends the
// runtime, which writes its counters.
func TestIntegrationMainhostQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vmemtrans binary and QEMU; run without -short")
	}
	qemuBin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("no qemu-system-x86_64: run make rig (it installs qemu-system-x86)")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc for the preload library: run make deps-test or apt-get install gcc")
	}
	if f, err := uffd.New(0); err != nil {
		t.Skipf("userfaultfd unavailable (%v): run as root or set sysctl vm.unprivileged_userfaultfd=1", err)
	} else {
		f.Close()
	}
	bin := buildVmemtrans(t)
	dir := t.TempDir()
	lib := filepath.Join(dir, "vmemtrans-preload.so")
	if out, err := exec.Command(gcc, "-O2", "-shared", "-fPIC", "-o", lib, "../kvmhost/handoff/preload/vmemtrans-preload.c").CombinedOutput(); err != nil {
		t.Fatalf("build the preload library: %v\n%s", err, out)
	}
	const vm = "vm-qemu"
	key := bytes.Repeat([]byte{0x3c}, 32)
	keys, err := control.NewKeyring(map[string][]byte{vm: key})
	if err != nil {
		t.Fatal(err)
	}
	sub := controltest.Start(t, keys)
	psk := filepath.Join(dir, "psk")
	if err := os.WriteFile(psk, []byte(vm+" "+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, stats := filepath.Join(dir, "vm.sock"), filepath.Join(dir, "stats.json")
	var info struct {
		Socket  string `json:"socket"`
		QMP     string `json:"qmp"`
		QEMUPid int    `json:"qemu_pid"`
	}
	const ram = 64 << 20
	proc := startDaemon(t, bin, &info, "mainhost", "--qemu", "--vm", vm, "--resident", "50", "--min-resident", "16",
		"--subhost", sub.Addr, "--psk-file", psk, "--rdma", "off", "--socket", sock, "--preload", lib,
		"--stats-file", stats, "--json", "--",
		qemuBin, "-accel", "tcg", "-m", "64M", "-nodefaults", "-display", "none", "-no-reboot",
		"-object", "memory-backend-memfd,id=ram,size=64M,share=on", "-machine", "pc,memory-backend=ram")
	if info.Socket != sock || info.QMP != sock+".qmp" || info.QEMUPid <= 0 {
		t.Fatalf("mainhost reports %+v", info)
	}
	c, err := vmsock.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	vi := c.Info()
	c.Close()
	want := vmsock.VMInfo{VM: vm, Layout: []fabric.PhysRange{{Start: 0, End: ram}}, RAMSize: ram, QMP: info.QMP,
		Subhosts: []vmsock.Subhost{{ID: 0, Addr: sub.Addr, VM: vm, Key: key}}}
	if !reflect.DeepEqual(vi, want) {
		t.Fatalf("info\n got %+v\nwant %+v", vi, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mon *qemu.Monitor
	for mon == nil {
		if mon, err = qemu.Dial(ctx, vi.QMP); err != nil {
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			mon = nil
			time.Sleep(100 * time.Millisecond)
		}
	}
	defer mon.Close()
	time.Sleep(2 * time.Second) // let the firmware run on split memory
	if st, err := mon.Status(ctx); err != nil || !st.Running {
		t.Fatalf("guest status %+v, %v", st, err)
	}
	if _, err := mon.Execute(ctx, "quit", nil); err != nil {
		t.Logf("quit: %v (qemu may close the monitor first)", err)
	}
	done := make(chan error, 1)
	go func() { done <- proc.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("mainhost after qemu quit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mainhost still runs 30 s after qemu quit")
	}
	var s struct {
		ZeroFills, Faults, PageOuts uint64
		Touched                     uint64 `json:"touched_pages"`
	}
	b, err := os.ReadFile(stats)
	if err != nil || json.Unmarshal(b, &s) != nil {
		t.Fatalf("stats file: %v %s", err, b)
	}
	if s.ZeroFills == 0 || s.Faults < s.ZeroFills || s.Touched != s.ZeroFills || s.PageOuts == 0 {
		t.Fatalf("the firmware's faults were not served: %s", b)
	}
	t.Logf("stats %s", b)
}
