package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// startDaemon runs bin with args and returns the process and the JSON
// object it prints on its first line of output.
func startDaemon(t *testing.T, bin string, info any, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
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
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line, ok := <-lines:
		if !ok || json.Unmarshal([]byte(line), info) != nil {
			_ = cmd.Wait()
			t.Fatalf("%s %s did not report itself (%q); stderr:\n%s", filepath.Base(bin), args[0], line, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s %s did not start; stderr:\n%s", filepath.Base(bin), args[0], stderr.String())
	}
	return cmd
}

// scrape returns the metrics text served at addr.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s, %v", addr, resp.Status, err)
	}
	return string(b)
}

// metricValue finds the value of an unlabelled sample in metrics text.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		var v float64
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("metric %s not served:\n%s", name, text)
	return 0
}

// TestIntegrationSubhostMetrics runs `vmemtrans subhost --metrics` and
// checks that its counters follow the traffic.
func TestIntegrationSubhostMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vmemtrans binary; run without -short")
	}
	bin := buildVmemtrans(t)
	key := bytes.Repeat([]byte{0x3c}, 32)
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte("vm-m "+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Listen  string `json:"listen"`
		Metrics string `json:"metrics"`
	}
	startDaemon(t, bin, &info, "subhost", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--psk-file", psk,
		"--rdma", "off", "--metrics", "127.0.0.1:0", "--json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := tcpfallback.Dial(ctx, info.Listen, "vm-m", key, tcpfallback.Options{Slots: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	b := make([]fabric.SlotIO, 5)
	for i := range b {
		b[i] = fabric.SlotIO{Slot: uint64(i), Buf: make([]byte, fabric.PageSize)}
	}
	if err := tr.WriteSlots(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := tr.ReadSlots(ctx, b[:3]); err != nil {
		t.Fatal(err)
	}
	m := scrape(t, info.Metrics)
	for name, want := range map[string]float64{
		"vmemtrans_subhost_connections_active":  1,
		"vmemtrans_subhost_write_pages_total":   5,
		"vmemtrans_subhost_read_pages_total":    3,
		"vmemtrans_subhost_read_bytes_total":    3 * fabric.PageSize,
		"vmemtrans_subhost_auth_failures_total": 0,
	} {
		if got := metricValue(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
