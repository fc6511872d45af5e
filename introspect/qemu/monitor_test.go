package qemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/image/imagetest"
	"github.com/vmemtrans/vmemtrans/introspect/qemu"
)

// fakeQMP speaks enough QMP on a unix socket to stand in for QEMU: the
// greeting, capabilities, human-monitor-command, stop/cont/query-status and
// dump-guest-memory (writing a synthetic dump).
type fakeQMP struct {
	mu       sync.Mutex
	running  bool
	commands []string
	hang     bool
}

func startFake(t *testing.T) (string, *fakeQMP) {
	t.Helper()
	dir, err := os.MkdirTemp("", "qmp") // short path: unix socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f := &fakeQMP{running: true}
	text := sample(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c, text)
		}
	}()
	return path, f
}

func (f *fakeQMP) serve(c net.Conn, regs string) {
	defer c.Close()
	enc := json.NewEncoder(c)
	enc.Encode(map[string]any{"QMP": map[string]any{"version": map[string]any{"qemu": map[string]int{"major": 8, "minor": 2, "micro": 0}}, "capabilities": []string{}}})
	// QMP commands are a JSON stream, not lines: go-qemu sends no newline.
	dec := json.NewDecoder(c)
	for {
		var cmd struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if dec.Decode(&cmd) != nil {
			return
		}
		f.mu.Lock()
		f.commands = append(f.commands, cmd.Execute)
		hang := f.hang
		f.mu.Unlock()
		if hang {
			continue // never answer
		}
		var ret any = map[string]any{}
		switch cmd.Execute {
		case "human-monitor-command":
			var a struct {
				Line string `json:"command-line"`
			}
			json.Unmarshal(cmd.Arguments, &a)
			if a.Line != "info registers -a" {
				enc.Encode(map[string]any{"error": map[string]string{"class": "GenericError", "desc": "unexpected " + a.Line}})
				continue
			}
			ret = regs
		case "stop", "cont":
			f.mu.Lock()
			f.running = cmd.Execute == "cont"
			f.mu.Unlock()
			enc.Encode(map[string]any{"event": strings.ToUpper(cmd.Execute), "data": map[string]any{}})
		case "query-status":
			f.mu.Lock()
			st := map[string]any{"running": f.running, "status": map[bool]string{true: "running", false: "paused"}[f.running]}
			f.mu.Unlock()
			ret = st
		case "dump-guest-memory":
			var a struct {
				Paging   bool   `json:"paging"`
				Protocol string `json:"protocol"`
			}
			json.Unmarshal(cmd.Arguments, &a)
			dump := imagetest.BuildDump(imagetest.DumpSpec{
				Segments: []imagetest.DumpSegment{{Phys: 0, Data: []byte("guest ram page")}},
				CPUs:     []imagetest.DumpCPU{{CR3: 0x1944000, CR4: 0x6f0}},
			})
			if a.Paging || !strings.HasPrefix(a.Protocol, "file:") || os.WriteFile(strings.TrimPrefix(a.Protocol, "file:"), dump, 0o600) != nil {
				enc.Encode(map[string]any{"error": map[string]string{"class": "GenericError", "desc": fmt.Sprintf("bad dump %+v", a)}})
				continue
			}
		case "qmp_capabilities":
		default:
			enc.Encode(map[string]any{"error": map[string]string{"class": "CommandNotFound", "desc": "The command " + cmd.Execute + " has not been found"}})
			continue
		}
		enc.Encode(map[string]any{"return": ret})
	}
}

func dial(t *testing.T, path string) *qemu.Monitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := qemu.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMonitor(t *testing.T) {
	path, fake := startFake(t)
	m := dial(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cr3, cr4, err := m.CR3(ctx)
	if err != nil || cr3 != 0x1944000 || cr4 != 0x6f0 {
		t.Fatalf("CR3() = %#x, %#x, %v", cr3, cr4, err)
	}
	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Status(ctx); err != nil || st.Running || st.Status != "paused" {
		t.Fatalf("after Pause: %+v %v", st, err)
	}
	if err := m.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Status(ctx); err != nil || !st.Running {
		t.Fatalf("after Resume: %+v %v", st, err)
	}
	dumpPath := filepath.Join(t.TempDir(), "vm.elf")
	if err := m.DumpGuestMemory(ctx, dumpPath); err != nil {
		t.Fatal(err)
	}
	img, err := image.Open(dumpPath)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if cpus := img.CPUs(); len(cpus) != 1 || cpus[0].CR3 != 0x1944000 {
		t.Fatalf("dump CPUs %+v", cpus)
	}
	if _, err := m.HumanCommand(ctx, "info mtree"); !errors.Is(err, qemu.ErrMonitor) {
		t.Fatalf("refused command: %v, want ErrMonitor", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	want := "qmp_capabilities human-monitor-command stop query-status cont query-status dump-guest-memory human-monitor-command"
	if got := strings.Join(fake.commands, " "); got != want {
		t.Fatalf("commands sent: %s\nwant: %s", got, want)
	}
}

func TestMonitorContextCancel(t *testing.T) {
	path, fake := startFake(t)
	m := dial(t, path)
	fake.mu.Lock()
	fake.hang = true
	fake.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := m.Pause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pause on a hung monitor: %v, want DeadlineExceeded", err)
	}
}

func TestDialNoSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := qemu.Dial(ctx, filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("Dial of a missing socket succeeded")
	}
}
