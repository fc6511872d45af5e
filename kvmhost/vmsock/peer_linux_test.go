//go:build linux

package vmsock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// helperEnv makes the test binary act as a client of another user.
const helperEnv = "VMSOCK_TEST_OTHER_USER_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		_, err := Dial(path)
		if !errors.Is(err, fabric.ErrForbidden) {
			fmt.Printf("dial as uid %d: %v, want a refusal\n", os.Geteuid(), err)
			os.Exit(1)
		}
		fmt.Println("refused:", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A client running as another user is refused with a clear error even when
// the socket's mode lets it connect.
func TestIntegrationRefusesOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a client as another uid needs root (run the tests as root); TestAuthorizePeer covers the decision")
	}
	srv, path := startServer(t, newFakeBackend(t), nil)
	// Open the way for uid 65534 to the socket, so that only the peer check stands.
	for p := filepath.Dir(path); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(filepath.Dir(path), "client.test")
	copyExecutable(t, exe)

	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "uid 65534") || !strings.Contains(string(out), "serves only uid 0") {
		t.Fatalf("refusal does not say who and why:\n%s", out)
	}
	if st := srv.Stats(); st.Refused != 1 || st.Connections != 0 {
		t.Fatalf("stats %+v, want one refusal and no client served", st)
	}
	t.Logf("%s", out)
}

func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
