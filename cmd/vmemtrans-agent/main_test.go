package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/kvmhost/agent"
)

// Bad flags and key files are refused before anything is opened (no
// kcore, no socket: host tests must never listen on AF_VSOCK).
func TestRunRefusesBadSetup(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(strings.Repeat("ab", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		o    options
		want string
		is   error
	}{
		"no key file":      {o: options{vsockPort: 5210}, want: "--key-file is required"},
		"nothing to serve": {o: options{keyFile: short}, want: "nothing to serve"},
		"missing key file": {o: options{keyFile: filepath.Join(dir, "none"), serial: "/dev/null"}, want: "no such file"},
		"key file open":    {o: options{keyFile: open, serial: "/dev/null"}, is: agent.ErrKey},
		"key too short":    {o: options{keyFile: short, serial: "/dev/null"}, is: agent.ErrKey},
	} {
		err := run(context.Background(), tt.o, zerolog.Nop())
		if err == nil || (tt.want != "" && !strings.Contains(err.Error(), tt.want)) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
