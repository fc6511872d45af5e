package qemu_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/qemu"
)

// TestIntegrationQEMU boots a diskless QEMU (the BIOS only, under TCG) whose
// RAM is a host file, then checks the monitor and both readers against each
// other: the ELF dump QEMU writes must hold the same low RAM as the memory
// file, and its CPU note the CR0 "info registers" shows.
func TestIntegrationQEMU(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-system-x86_64 not found, but CI installs it (scripts/install-deps.sh)")
		}
		t.Skip("qemu-system-x86_64 not found: run scripts/install-deps.sh (qemu-system-x86)")
	}
	dir, err := os.MkdirTemp("", "qemu")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock, mem := filepath.Join(dir, "qmp.sock"), filepath.Join(dir, "guest.mem")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"-machine", "pc,memory-backend=mem", "-accel", "tcg", "-m", "64M",
		"-object", "memory-backend-file,id=mem,size=64M,mem-path="+mem+",share=on",
		"-qmp", "unix:"+sock+",server=on,wait=off",
		"-display", "none", "-nodefaults", "-no-reboot")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	var m *qemu.Monitor
	for m == nil {
		if ctx.Err() != nil {
			t.Fatalf("qmp socket never came up: %s", stderr.String())
		}
		if m, err = qemu.Dial(ctx, sock); err != nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	defer m.Close()
	time.Sleep(time.Second) // let the BIOS write to RAM

	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Status(ctx); err != nil || st.Running {
		t.Fatalf("status after pause: %+v %v", st, err)
	}
	regs, err := m.Registers(ctx)
	if err != nil || len(regs) != 1 {
		t.Fatalf("registers: %+v %v", regs, err)
	}
	dumpPath := filepath.Join(dir, "vm.elf")
	if err := m.DumpGuestMemory(ctx, dumpPath); err != nil {
		t.Fatal(err)
	}
	dump, err := image.Open(dumpPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Close()
	live, err := image.OpenMemFile(mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	cpus := dump.CPUs()
	if len(cpus) != 1 || !cpus[0].HasControl || cpus[0].CR0 != regs[0].CR0 || cpus[0].CR3 != regs[0].CR3 {
		t.Fatalf("dump CPUs %+v, monitor registers %+v", cpus, regs[0])
	}
	if dump.Format() != image.FormatELFDump || live.Size() != 64<<20 {
		t.Fatalf("dump format %s, live size %#x", dump.Format(), live.Size())
	}
	a := []physmem.Range{{Addr: 0, Buf: make([]byte, 0xa0000)}, {Addr: 1 << 20, Buf: make([]byte, 63<<20)}}
	b := []physmem.Range{{Addr: 0, Buf: make([]byte, 0xa0000)}, {Addr: 1 << 20, Buf: make([]byte, 63<<20)}}
	if err := dump.ReadPhys(a); err != nil {
		t.Fatalf("read dump: %v", err)
	}
	if err := live.ReadPhys(b); err != nil {
		t.Fatalf("read memory file: %v", err)
	}
	for i := range a {
		if !bytes.Equal(a[i].Buf, b[i].Buf) {
			t.Errorf("range %#x: dump and memory file differ", a[i].Addr)
		}
	}
	if bytes.Count(a[0].Buf, []byte{0}) == len(a[0].Buf) {
		t.Error("low RAM is all zeros: the BIOS wrote nothing, the comparison proves little")
	}
	if err := m.Resume(ctx); err != nil {
		t.Fatal(err)
	}
}
