//go:build linux

package kvmhost

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
	"github.com/vmemtrans/vmemtrans/kvmhost/handoff"
)

// writerProgram maps a memfd as a VMM maps guest RAM (so the preload hands
// it over), then rewrites every page's first and last word with the round
// number and checks the whole buffer after each round: any write lost by a
// page-out shows as a stale or zero word.
const writerProgram = `
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
	size_t pages = strtoul(argv[1], 0, 10), rounds = strtoul(argv[2], 0, 10), bad = 0;
	int fd = memfd_create("guest-ram", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, pages * 4096) < 0) { perror("memfd"); return 2; }
	volatile uint64_t *m = mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) { perror("mmap"); return 2; }
	for (size_t r = 1; r <= rounds; r++) {
		for (size_t p = 0; p < pages; p++) {
			m[p * 512] = r << 32 | p;
			m[p * 512 + 511] = ~(r << 32 | p);
		}
		for (size_t p = 0; p < pages; p++)
			if (m[p * 512] != (r << 32 | p) || m[p * 512 + 511] != ~(r << 32 | p))
				bad++;
	}
	printf("corruptions %zu\n", bad);
	return bad != 0;
}
`

func buildC(t *testing.T, dir, name, src string, args ...string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("no gcc to build the preload library: run make deps-test (or apt-get install gcc)")
	}
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(gcc, append([]string{"-O2", "-o", out, c}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, b)
	}
	return out
}

func buildPreload(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.ReadFile("handoff/preload/vmemtrans-preload.c")
	if err != nil {
		t.Fatal(err)
	}
	return buildC(t, dir, "vmemtrans-preload.so", string(src), "-shared", "-fPIC")
}

// TestIntegrationSpaceWriterLosesNothing runs a writer process under the
// preload library: its mapping's userfaultfd comes over the handoff socket,
// the runtime serves it at a small resident share and evicts pages the
// writer is writing meanwhile; no write may be lost.
func TestIntegrationSpaceWriterLosesNothing(t *testing.T) {
	dir := t.TempDir()
	lib := buildPreload(t, dir)
	writer := buildC(t, dir, "writer", writerProgram)
	const pages, rounds = 2048, 10

	l, err := handoff.Listen(filepath.Join(dir, "handoff.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, writer, "2048", "10")
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib, "VMEMTRANS_HANDOFF_SOCKET="+l.Path(), "VMEMTRANS_HANDOFF_MIN_MB=4")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	h, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("%v\nwriter: %s", err, out.String())
	}
	if h.Length != pages*fabric.PageSize || h.Offset != 0 {
		t.Fatalf("handed range %+v, want %d pages at offset 0", h.Message, pages)
	}
	cfg := SpaceConfig{RAM: h.RAM, UFFD: h.UFFD, Base: h.Addr, Length: h.Length, ResidentPct: 25, MinResident: 64}
	cfg.Subhosts = memSubhosts(cfg.Layout(), 2)
	rt, err := NewForSpace(cfg)
	if errors.Is(err, uffd.ErrUnsupported) {
		t.Skipf("userfaultfd unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Ack(true); err != nil {
		t.Fatal(err)
	}

	// Evict at random beside the pressure evictions, to hit pages mid-write.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			g := fabric.GFN(rng.IntN(pages - 1))
			rt.evictNow([]fabric.GFN{g, g + 1})
			runtime.Gosched()
		}
	}()
	err = cmd.Wait()
	close(stop)
	wg.Wait()
	if err != nil || !strings.Contains(out.String(), "corruptions 0") {
		t.Fatalf("writer: %v\n%s", err, out.String())
	}
	st := rt.Stats()
	t.Logf("stats %+v", st)
	if st.PageOuts == 0 || st.PageIns == 0 || st.ZeroFills < pages {
		t.Fatalf("no paging happened: %+v", st)
	}
	if st.ResidentLimit > pages/4+64 {
		t.Fatalf("resident limit %d above 25%% of %d touched pages", st.ResidentLimit, pages)
	}
}

// TestIntegrationHandoffRefused checks that a refused handoff stops the VMM
// with a message instead of leaving it with an unserved range.
func TestIntegrationHandoffRefused(t *testing.T) {
	dir := t.TempDir()
	lib := buildPreload(t, dir)
	writer := buildC(t, dir, "writer", writerProgram)
	l, err := handoff.Listen(filepath.Join(dir, "handoff.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, writer, "1024", "1")
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+lib, "VMEMTRANS_HANDOFF_SOCKET="+l.Path(), "VMEMTRANS_HANDOFF_MIN_MB=4")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	h, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.Space.Close()
	if err := h.Ack(false); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "refused the guest ram") {
		t.Fatalf("writer after a refusal: %v\n%s", err, out.String())
	}
}
