package image_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/image/imagetest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func open(t testing.TB, open func(string) (*image.Image, error), path string) *image.Image {
	t.Helper()
	img, err := open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func testDump(content []byte) []byte {
	return imagetest.BuildDump(imagetest.DumpSpec{
		Segments: imagetest.SplitContent(content, 3),
		CPUs:     []imagetest.DumpCPU{{CR3: 0x1944000, CR4: 0x6f0}},
	})
}

func TestConformanceBytes(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader { return image.NewBytes(c) })
}

func TestConformanceRaw(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		return open(t, image.OpenRaw, writeFile(t, "raw.img", c))
	})
}

func TestConformanceOpenRaw(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		img := open(t, image.Open, writeFile(t, "raw.img", c))
		if img.Format() != image.FormatRaw || img.Compressed() {
			t.Fatalf("sniffed %s (compressed %v), want raw", img.Format(), img.Compressed())
		}
		return img
	})
}

func TestConformanceZstdRaw(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		img := open(t, image.Open, writeFile(t, "raw.img.zst", zstdBytes(t, c)))
		if img.Format() != image.FormatRaw || !img.Compressed() {
			t.Fatalf("sniffed %s (compressed %v), want compressed raw", img.Format(), img.Compressed())
		}
		return img
	})
}

func TestConformanceDumpBytes(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		img, err := image.NewDumpBytes(testDump(c))
		if err != nil {
			t.Fatal(err)
		}
		return img
	})
}

func TestConformanceDumpFile(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		img := open(t, image.Open, writeFile(t, "vm.elf", testDump(c)))
		if img.Format() != image.FormatELFDump {
			t.Fatalf("sniffed %s, want elf-dump", img.Format())
		}
		return img
	})
}

func TestConformanceZstdDump(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		img := open(t, image.Open, writeFile(t, "vm.elf.zst", zstdBytes(t, testDump(c))))
		if img.Format() != image.FormatELFDump || !img.Compressed() {
			t.Fatalf("sniffed %s (compressed %v), want compressed elf-dump", img.Format(), img.Compressed())
		}
		if cpus := img.CPUs(); len(cpus) != 1 || cpus[0].CR3 != 0x1944000 {
			t.Fatalf("CPUs() = %+v, want one CPU with CR3 0x1944000", cpus)
		}
		return img
	})
}

func TestConformanceMemFile(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		return open(t, func(p string) (*image.Image, error) { return image.OpenMemFile(p, nil) }, writeFile(t, "guest.mem", c))
	})
}

func TestConformanceWithLatency(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		return physmem.WithLatency(image.NewBytes(c), 0)
	})
}

func TestConformanceSeekableDump(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		var b bytes.Buffer
		// Frames of a size that is no page multiple, so pages straddle them.
		err = image.WriteSeekable(&b, bytes.NewReader(testDump(c)), image.SeekableOptions{FrameSize: 50000, Workers: 2,
			Compress: func(dst, content []byte) ([]byte, error) { return enc.EncodeAll(content, dst), nil }})
		if err != nil {
			t.Fatal(err)
		}
		img := open(t, image.Open, writeFile(t, "vm.elf.zst", b.Bytes()))
		if img.Format() != image.FormatELFDump || !img.Compressed() {
			t.Fatalf("sniffed %s (compressed %v), want compressed elf-dump", img.Format(), img.Compressed())
		}
		return img
	})
}
