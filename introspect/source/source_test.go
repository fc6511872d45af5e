package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/kernel"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
)

func TestSpecRejected(t *testing.T) {
	img := &image.Image{}
	for name, sp := range map[string]Spec{
		"none":               {},
		"image and qmp":      {Image: "x", QMP: "q", MemPath: "m"},
		"image and reader":   {Image: "x", Reader: img},
		"qmp alone":          {QMP: "q"},
		"mem-path alone":     {MemPath: "m"},
		"pause on an image":  {Image: "x", Pause: true},
		"pause on a reader":  {Reader: img, Pause: true},
		"reader and a guest": {Reader: img, QMP: "q", MemPath: "m"},
	} {
		if _, err := Open(context.Background(), sp); !errors.Is(err, ErrSpec) {
			t.Errorf("%s: err %v, want ErrSpec", name, err)
		}
	}
}

func TestMissingImage(t *testing.T) {
	_, err := Open(context.Background(), Spec{Image: filepath.Join(t.TempDir(), "absent.elf")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v, want a not-exist error", err)
	}
}

type closeCounter struct{ n int }

func (c *closeCounter) Close() error { c.n++; return nil }

// On the real-guest fixture: an image path and the same memory as a reader
// (with its registers, and without: the scan) bind the same kernel, and the
// reader's Closer is closed with the Source, also when Open fails.
func TestOpenFixture(t *testing.T) {
	dump := "../../test/fixtures/linux-6.1-clean/memory.elf.zst"
	vmlinuz := "../../test/fixtures/linux-6.1-vmlinuz/vmlinuz"
	for _, p := range []string{dump, vmlinuz} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("fixture not present (%v): run make fixtures", err)
		}
	}
	ctx := context.Background()
	byPath, err := Open(ctx, Spec{Image: dump, Vmlinuz: vmlinuz})
	if err != nil {
		t.Fatal(err)
	}
	defer byPath.Close()
	img, err := image.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	cpu := img.CPUs()[0]
	var closed closeCounter
	byReader, err := Open(ctx, Spec{Reader: img, CPU: &cpu, Closer: &closed, Vmlinuz: vmlinuz})
	if err != nil {
		t.Fatal(err)
	}
	if byReader.Kernel.Slide() != byPath.Kernel.Slide() || byReader.Kernel.Method() != kernel.MethodProbe {
		t.Errorf("reader: slide %#x by %s; image: slide %#x", byReader.Kernel.Slide(), byReader.Kernel.Method(), byPath.Kernel.Slide())
	}
	tasks, err := linux.Tasks(byReader.Kernel, linux.Options{})
	if err != nil || len(tasks) < 10 {
		t.Errorf("ps through the reader: %d tasks, err %v", len(tasks), err)
	}
	byReader.Close()
	if closed.n != 1 {
		t.Errorf("Closer closed %d times, want 1", closed.n)
	}
	if _, err := Open(ctx, Spec{Reader: img, Closer: &closed, Vmlinuz: filepath.Join(t.TempDir(), "none")}); err == nil || closed.n != 2 {
		t.Errorf("failed open: err %v, Closer closed %d times in all, want 2", err, closed.n)
	}
}
