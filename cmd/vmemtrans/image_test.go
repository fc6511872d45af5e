package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

func TestImageCompressIsSeekableAndExact(t *testing.T) {
	content := make([]byte, 3<<20+100)
	for i := range content {
		if (i>>16)%3 != 0 {
			content[i] = byte(i ^ i>>9)
		}
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "guest.raw"), filepath.Join(dir, "guest.raw.zst")
	if err := os.WriteFile(in, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := compressImage(in, out, zstd.SpeedFastest, 256<<10); err != nil {
		t.Fatal(err)
	}
	img, err := image.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	got := make([]byte, len(content))
	if err := img.ReadPhys([]physmem.Range{{Addr: 0, Buf: got}}); err != nil || !bytes.Equal(got, content) || !img.Compressed() {
		t.Fatalf("the compressed image reads differently (err %v, compressed %v)", err, img.Compressed())
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	if plain, err := dec.DecodeAll(file, nil); err != nil || !bytes.Equal(plain, content) {
		t.Fatalf("a plain zstd decoder reads it differently (%v)", err)
	}
	if err := compressImage(filepath.Join(dir, "missing"), filepath.Join(dir, "x.zst"), zstd.SpeedFastest, 1<<20); err == nil {
		t.Fatal("compressing a missing file succeeded")
	}
}
