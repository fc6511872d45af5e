//go:build linux

package vmsock

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// fakeBackend is a VM of ramPages pages in a memfd, page i filled with
// byte i+1, and a location map with a distinct word per GFN.
type fakeBackend struct {
	ram    *os.File
	locmap *fabric.LocationMap
	info   VMInfo
	block  bool // MakeResident waits for ctx to end

	mu       sync.Mutex
	requests [][]fabric.GFN
	canceled int
}

const ramPages = 64

func newFakeBackend(t testing.TB) *fakeBackend {
	t.Helper()
	fd, err := unix.MemfdCreate("vmsock-test-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	ram := os.NewFile(uintptr(fd), "ram")
	t.Cleanup(func() { ram.Close() })
	page := make([]byte, fabric.PageSize)
	for i := range ramPages {
		for j := range page {
			page[j] = byte(i + 1)
		}
		if _, err := ram.WriteAt(page, int64(i)*fabric.PageSize); err != nil {
			t.Fatal(err)
		}
	}
	lm, err := fabric.CreateLocationMap(ramPages)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	for g := range fabric.GFN(ramPages) {
		w, err := fabric.RemoteWord(uint8(g%3), uint64(g)*7, uint32(g))
		if err != nil {
			t.Fatal(err)
		}
		if err := lm.Store(g, w); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeBackend{ram: ram, locmap: lm, info: VMInfo{
		VM:      "vm-test",
		Layout:  []fabric.PhysRange{{Start: 0, End: 0x10000}, {Start: 0x20000, End: ramPages * fabric.PageSize}},
		CR3:     0x1234000,
		CR4:     0x3606f0,
		RAMSize: ramPages * fabric.PageSize,
		Subhosts: []Subhost{
			{ID: 0, Addr: "127.0.0.1:7450", VM: "vm-test", Key: []byte("key-zero-0123456789abcdef")},
			{ID: 1, Addr: "127.0.0.1:7451", VM: "vm-test", Key: []byte{0, 1, 2, 3}},
		},
	}}
}

func (b *fakeBackend) Info() VMInfo { return b.info }

func (b *fakeBackend) RAMFile() (*os.File, error) {
	return os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", b.ram.Fd()), os.O_RDONLY, 0)
}

func (b *fakeBackend) LocationMapFile() (*os.File, error) { return b.locmap.ReadOnlyFile() }

// MakeResident accepts GFNs inside the RAM and refuses the others.
func (b *fakeBackend) MakeResident(ctx context.Context, gfns []fabric.GFN) []error {
	b.mu.Lock()
	b.requests = append(b.requests, append([]fabric.GFN(nil), gfns...))
	b.mu.Unlock()
	errs := make([]error, len(gfns))
	if b.block {
		<-ctx.Done()
		b.mu.Lock()
		b.canceled++
		b.mu.Unlock()
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return errs
	}
	for i, g := range gfns {
		if g >= ramPages {
			errs[i] = fmt.Errorf("gfn %#x beyond %d pages: %w", uint64(g), ramPages, fabric.ErrGFNRange)
		}
	}
	return errs
}

func (b *fakeBackend) seen() (requests [][]fabric.GFN, canceled int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]fabric.GFN(nil), b.requests...), b.canceled
}

// startServer serves b on a socket in a fresh directory.
func startServer(t testing.TB, b Backend, tweak func(*ServerConfig)) (*Server, string) {
	t.Helper()
	cfg := ServerConfig{Backend: b, Log: zerolog.Nop()}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vm.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, path
}

// rawConn is a bare connection for speaking malformed protocol.
func rawConn(t testing.TB, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
