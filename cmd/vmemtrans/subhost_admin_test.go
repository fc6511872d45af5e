package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/control"
)

func TestStateDirOpenToOthersIsTightened(t *testing.T) {
	log = zerolog.Nop()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := ensureStateDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode after ensureStateDir = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func TestKeyTargetNeedsExplicitAnyVM(t *testing.T) {
	if vm, err := keyTarget([]string{"vm-1"}, false); err != nil || vm != "vm-1" {
		t.Errorf("keyTarget(vm-1) = %q, %v", vm, err)
	}
	if vm, err := keyTarget(nil, true); err != nil || vm != control.AnyVM {
		t.Errorf("keyTarget(--any-vm) = %q, %v", vm, err)
	}
	for _, args := range [][]string{nil, {"*"}, {"../x"}} {
		if vm, err := keyTarget(args, false); err == nil {
			t.Errorf("keyTarget(%q) = %q, want an error", args, vm)
		}
	}
	if _, err := keyTarget([]string{"vm"}, true); err == nil {
		t.Error("a VMID with --any-vm must be refused")
	}
}
