package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// buildVmemtrans builds the CLI into a temporary directory.
func buildVmemtrans(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vmemtrans")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vmemtrans")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startSubhostProcess runs `vmemtrans subhost` on a free loopback port and
// returns the process and the address it reports.
func startSubhostProcess(t *testing.T, bin, stateDir, pskFile string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "subhost", "--listen", "127.0.0.1:0", "--state-dir", stateDir, "--psk-file", pskFile, "--rdma", "off", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		var info struct {
			Listen string `json:"listen"`
		}
		if !ok || json.Unmarshal([]byte(line), &info) != nil || info.Listen == "" {
			t.Fatalf("subhost did not report its address (%q); stderr:\n%s", line, stderr.String())
		}
		return cmd, info.Listen
	case <-time.After(30 * time.Second):
		t.Fatalf("subhost did not start; stderr:\n%s", stderr.String())
	}
	return nil, ""
}

func e2ePage(slot uint64, gen byte) []byte {
	p := make([]byte, fabric.PageSize)
	for i := range p {
		p[i] = byte(uint64(i)*31+slot*7) ^ gen
	}
	p[0], p[1], p[2] = byte(slot), byte(slot>>8), gen
	return p
}

// TestIntegrationSubhostRestart writes pages to a real sub-host process,
// kills it with SIGKILL, restarts it on the same state directory, and reads
// every page back.
func TestIntegrationSubhostRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vmemtrans binary; run without -short")
	}
	bin := buildVmemtrans(t)
	state := t.TempDir()
	key := bytes.Repeat([]byte{0x3c}, 32)
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte("vm-e2e 3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const slots = 3000
	proc, addr := startSubhostProcess(t, bin, state, psk)
	tr, err := tcpfallback.Dial(ctx, addr, "vm-e2e", key, tcpfallback.Options{Slots: slots, MaxBatch: 128, InFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Every slot, in several batches, the last one rewritten.
	for gen := byte(1); gen <= 2; gen++ {
		b := make([]fabric.SlotIO, slots)
		for i := range b {
			b[i] = fabric.SlotIO{Slot: uint64(i), Buf: e2ePage(uint64(i), gen)}
		}
		if err := tr.WriteSlots(ctx, b); err != nil {
			t.Fatalf("write generation %d: %v", gen, err)
		}
	}
	if _, err := tcpfallback.Dial(ctx, addr, "vm-e2e", bytes.Repeat([]byte{1}, 32), tcpfallback.Options{}); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("wrong key = %v, want ErrAuth", err)
	}

	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	b := []fabric.SlotIO{{Slot: 0, Buf: make([]byte, fabric.PageSize)}}
	if err := tr.ReadSlots(ctx, b); !errors.Is(err, fabric.ErrPeer) {
		t.Fatalf("read from the killed sub-host = %v, want ErrPeer", err)
	}
	tr.Close()

	_, addr = startSubhostProcess(t, bin, state, psk)
	tr, err = tcpfallback.Dial(ctx, addr, "vm-e2e", key, tcpfallback.Options{}) // open existing only
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Slots() != slots {
		t.Fatalf("restarted region has %d slots, want %d", tr.Slots(), slots)
	}
	r := make([]fabric.SlotIO, slots)
	for i := range r {
		r[i] = fabric.SlotIO{Slot: uint64(i), Buf: make([]byte, fabric.PageSize)}
	}
	if err := tr.ReadSlots(ctx, r); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i := range r {
		if !bytes.Equal(r[i].Buf, e2ePage(uint64(i), 2)) {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d pages lost across SIGKILL and restart", lost, slots)
	}
	st, err := tr.Stats(ctx)
	if err != nil || st.ResidentBytes < slots*fabric.PageSize {
		t.Fatalf("stats after restart = %+v, %v", st, err)
	}
}
