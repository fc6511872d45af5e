package test

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// TestIntegrationSubhostPerVMKeys runs a sub-host on a fresh state directory:
// it must start with no key at all, take a VM's key from `subhost keys add`
// without a restart, give that key to no other VM, and stop granting keys
// when the key file becomes readable by others.
func TestIntegrationSubhostPerVMKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vmemtrans binary; run without -short")
	}
	bin := buildVmemtrans(t)
	state := filepath.Join(t.TempDir(), "state")
	psk := filepath.Join(state, "psk")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	_, addr := startSubhostProcess(t, bin, state, psk)
	guess := make([]byte, 32)
	if _, err := tcpfallback.Dial(ctx, addr, "vm-1", guess, tcpfallback.Options{Slots: 4}); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("dial before any key was added = %v, want ErrAuth", err)
	}
	out, err := exec.Command(bin, "subhost", "keys", "add", "vm-1", "--state-dir", state).Output()
	if err != nil {
		t.Fatalf("keys add: %v", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil || len(key) != 32 {
		t.Fatalf("keys add printed %q", out)
	}
	tr, err := tcpfallback.Dial(ctx, addr, "vm-1", key, tcpfallback.Options{Slots: 4})
	if err != nil {
		t.Fatalf("dial with the added key, no restart: %v", err)
	}
	tr.Close()
	if _, err := tcpfallback.Dial(ctx, addr, "vm-2", key, tcpfallback.Options{Slots: 4}); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("vm-1's key opened vm-2: %v", err)
	}
	if err := os.Chmod(psk, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tcpfallback.Dial(ctx, addr, "vm-1", key, tcpfallback.Options{Slots: 4}); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("dial with a key file open to others = %v, want ErrAuth", err)
	}
	msg, err := exec.Command(bin, "subhost", "keys", "list", "--state-dir", state).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "chmod 600 "+psk) {
		t.Fatalf("keys list of a 0644 key file = %v: %s", err, msg)
	}
}
