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
	if err := compressImage(in, in, zstd.SpeedFastest, 1<<20); err == nil {
		t.Fatal("compressing a file onto itself succeeded")
	}
	if got, err := os.ReadFile(in); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("compressing onto itself touched the input (%v)", err)
	}

	// A plain zstd stream is made seekable from its content.
	enc, _ := zstd.NewWriter(nil)
	plain := filepath.Join(dir, "plain.raw.zst")
	if err := os.WriteFile(plain, enc.EncodeAll(content, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	enc.Close()
	again := filepath.Join(dir, "again.raw.zst")
	if err := compressImage(plain, again, zstd.SpeedFastest, 1<<20); err != nil {
		t.Fatal(err)
	}
	if f, err := os.ReadFile(again); err != nil || !bytes.HasSuffix(f, []byte{0xb1, 0xea, 0x92, 0x8f}) {
		t.Fatalf("%s does not end in the seekable format's magic (%v)", again, err)
	}
	img2, err := image.Open(again)
	if err != nil {
		t.Fatal(err)
	}
	defer img2.Close()
	clear(got)
	if err := img2.ReadPhys([]physmem.Range{{Addr: 0, Buf: got}}); err != nil || !bytes.Equal(got, content) || img2.Size() != uint64(len(content)) {
		t.Fatalf("a plain zstd image made seekable reads differently (err %v, size %d)", err, img2.Size())
	}
}
