//go:build linux

package handoff

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/internal/uffd"
)

// vmmSide does what the preload library does in a VMM: a memfd, a
// userfaultfd, and the message with both descriptors; it returns the ack.
func vmmSide(t *testing.T, path string, m Message, fds ...int) (byte, error) {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, _, err := c.WriteMsgUnix(AppendMessage(nil, m), unix.UnixRights(fds...), nil); err != nil {
		return 0, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		return 0, err
	}
	return b[0], nil
}

func memfd(t *testing.T, size int64) int {
	t.Helper()
	fd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, size); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestHandoffReceives(t *testing.T) {
	uf, err := uffd.New(uffd.FeatureMissingShmem | uffd.FeatureWPShmem)
	if errors.Is(err, uffd.ErrUnsupported) {
		t.Skipf("userfaultfd unavailable (%v): run as root or allow vm.unprivileged_userfaultfd=1", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer uf.Close()
	ram := memfd(t, 1<<20)
	l, err := Listen(filepath.Join(t.TempDir(), "h.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(l.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	want := Message{Addr: 0x7f0000000000, Length: 1 << 20}
	acks := make(chan byte, 1)
	go func() {
		a, err := vmmSide(t, l.Path(), want, uf.Fd(), ram)
		if err != nil {
			a = 0xff
		}
		acks <- a
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Space.Close()
	if h.Message != want || h.UFFD == nil || h.RAM == nil || h.PeerPID() != os.Getpid() {
		t.Fatalf("received %+v pid %d", h.Message, h.PeerPID())
	}
	if err := h.Ack(true); err != nil {
		t.Fatal(err)
	}
	if a := <-acks; a != 0 {
		t.Fatalf("ack %d, want 0", a)
	}
}

func TestHandoffRejectsWrongDescriptors(t *testing.T) {
	ram := memfd(t, 1<<20)
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	l, err := Listen(filepath.Join(t.TempDir(), "h.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ok := Message{Addr: 0x7f0000000000, Length: 1 << 20}
	for name, tc := range map[string]struct {
		m   Message
		fds []int
	}{
		"one descriptor":   {ok, []int{ram}},
		"pipe, not a uffd": {ok, []int{p[0], ram}},
		"range past ram":   {Message{Addr: 0x7f0000000000, Length: 2 << 20}, []int{p[0], ram}},
		"unaligned":        {Message{Addr: 0x7f0000000010, Length: 1 << 20}, []int{p[0], ram}},
	} {
		done := make(chan error, 1)
		go func() { _, err := vmmSide(t, l.Path(), tc.m, tc.fds...); done <- err }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h, err := l.Accept(ctx)
		cancel()
		if !errors.Is(err, ErrMessage) {
			if h != nil {
				h.Space.Close()
				h.Ack(false)
			}
			t.Errorf("%s: accepted or wrong error: %v", name, err)
		}
		if err := <-done; err == nil {
			t.Errorf("%s: the vmm got an ack", name)
		}
	}
}

func TestHandoffAcceptHonoursContext(t *testing.T) {
	l, err := Listen(filepath.Join(t.TempDir(), "h.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("accept after the deadline: %v", err)
	}
}
