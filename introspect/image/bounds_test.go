package image

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

func tempFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// zstdStream compresses b as a stream that does not declare its size, as
// `zstd` does reading a pipe: only decompressing tells how large it is.
func zstdStream(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	enc, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.ReadFrom(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// elfCore builds a minimal x86-64 ELF core: one PT_LOAD of data at paddr
// with memory size memsz, file data at offset 4096.
func elfCore(paddr, memsz uint64, data []byte, phnum uint16, shInfo uint32) []byte {
	b := make([]byte, 4096+len(data)+64)
	copy(b, elfMagic)
	b[4], b[5], b[6] = elfClass64, elfDataLSB, 1
	le.PutUint16(b[16:], elfTypeCore)
	le.PutUint16(b[18:], elfMachX86_64)
	le.PutUint64(b[32:], 64) // e_phoff
	le.PutUint16(b[54:], elfPhdrSize)
	le.PutUint16(b[56:], phnum)
	shoff := uint64(4096 + len(data))
	le.PutUint64(b[40:], shoff)
	le.PutUint16(b[58:], elfShdrSize)
	le.PutUint32(b[shoff+44:], shInfo) // section 0's sh_info
	p := b[64:]
	le.PutUint32(p, ptLoad)
	le.PutUint64(p[8:], 4096)
	le.PutUint64(p[16:], paddr)
	le.PutUint64(p[24:], paddr)
	le.PutUint64(p[32:], uint64(len(data)))
	le.PutUint64(p[40:], memsz)
	copy(b[4096:], data)
	return b
}

func scanAll(r physmem.Reader, pattern string) []uint64 {
	var hits []uint64
	physmem.Scan(r, []byte(pattern), func(pa uint64) bool { hits = append(hits, pa); return true })
	return hits
}

// A zstd image of zeros ("bomb") is bounded and never materialised: its zero
// pages stay holes, whatever it expands to.
func TestZstdBombIsBoundedAndSparse(t *testing.T) {
	const size = 256 << 20
	raw := make([]byte, size)
	copy(raw[100<<20+17:], "needle") // one page of data, mid-image
	path := tempFile(t, "bomb.zst", zstdStream(t, raw))
	if _, err := OpenWith(path, Options{MaxSize: size - 1}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("OpenWith below the expanded size = %v, want ErrTooLarge", err)
	}
	img, err := OpenWith(path, Options{MaxSize: size})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Size() != size {
		t.Fatalf("size %d, want %d", img.Size(), size)
	}
	if n := img.dataBytes(); n > 4096 {
		t.Fatalf("%d bytes of a zero image materialised, want at most one page", n)
	}
	if hits := scanAll(img, "needle"); len(hits) != 1 || hits[0] != 100<<20+17 {
		t.Fatalf("scan found %#x, want [%#x]", hits, 100<<20+17)
	}
	buf := make([]byte, 8192)
	if err := img.ReadPhys([]physmem.Range{{Addr: 100<<20 + 17 - 4096, Buf: buf}}); err != nil || !bytes.Equal(buf[4096:4102], []byte("needle")) {
		t.Fatalf("read across hole and data: %v", err)
	}
	// A frame that declares its size is refused before decompressing.
	enc, _ := zstd.NewWriter(nil)
	declared := tempFile(t, "declared.zst", enc.EncodeAll(raw, nil))
	if _, err := OpenWith(declared, Options{MaxSize: 1 << 20}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("declared oversize = %v, want ErrTooLarge", err)
	}
}

// The sparse writer stores exactly the stream, whatever the write sizes and
// alignment.
func TestSparseWriterKeepsContent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 1<<20)
	for i := 0; i < len(want); i += 4096 {
		if rng.IntN(3) == 0 {
			for j := range 4096 {
				want[i+j] = byte(rng.Uint32())
			}
		} else if rng.IntN(2) == 0 {
			want[i+rng.IntN(4096)] = 1 // a nearly zero page
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "sparse")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &sparseWriter{f: f, limit: uint64(len(want))}
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(20000))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(w.off); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("sparse writer content differs (%v)", err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past the limit = %v, want ErrTooLarge", err)
	}
}

// A PT_LOAD whose memory size reaches past 52 bits is refused; a large zero
// tail below it is a hole that scans skip instead of reading.
func TestELFMemorySizeBounded(t *testing.T) {
	data := bytes.Repeat([]byte{0x11}, 4096)
	copy(data[100:], "needle")
	if _, err := NewDumpBytes(elfCore(0, 1<<62, data, 1, 0)); !errors.Is(err, ErrFormat) {
		t.Fatalf("memsz 2^62 = %v, want ErrFormat", err)
	}
	if _, err := NewDumpBytes(elfCore(1<<52-4096, 8192, data, 1, 0)); !errors.Is(err, ErrFormat) {
		t.Fatalf("segment across 2^52 = %v, want ErrFormat", err)
	}
	img, err := NewDumpBytes(elfCore(0, 1<<51, data, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if hits := scanAll(img, "needle"); len(hits) != 1 || hits[0] != 100 {
		t.Fatalf("scan of a 2^51-byte zero tail found %#x, want [0x64]", hits)
	}
	buf := []byte{1, 2, 3}
	if err := img.ReadPhys([]physmem.Range{{Addr: 1 << 50, Buf: buf}}); err != nil || !bytes.Equal(buf, []byte{0, 0, 0}) {
		t.Fatalf("zero tail reads %v, %v", buf, err)
	}
}

// e_phnum PN_XNUM takes the count from section header 0, and a count that
// gives no memory is refused rather than read as an empty image.
func TestELFExtendedPhnum(t *testing.T) {
	data := bytes.Repeat([]byte{0x22}, 4096)
	img, err := NewDumpBytes(elfCore(0x1000, 4096, data, elfPNXNum, 1))
	if err != nil {
		t.Fatalf("PN_XNUM with sh_info 1: %v", err)
	}
	if img.Size() != 0x2000 {
		t.Fatalf("PN_XNUM image size %#x, want 0x2000", img.Size())
	}
	for _, shInfo := range []uint32{0, 1 << 30} {
		if _, err := NewDumpBytes(elfCore(0x1000, 4096, data, elfPNXNum, shInfo)); !errors.Is(err, ErrFormat) {
			t.Fatalf("PN_XNUM with sh_info %d = %v, want ErrFormat", shInfo, err)
		}
	}
}

// A sparse raw image far larger than its data is opened, scanned and bounded
// without reading its holes.
func TestRawSparseImage(t *testing.T) {
	const size = 16 << 30
	path := filepath.Join(t.TempDir(), "sparse.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("needle"), 12<<30+5); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := OpenWith(path, Options{MaxSize: size / 2}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("raw image over the bound = %v, want ErrTooLarge", err)
	}
	img, err := OpenWith(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.dataBytes() > 1<<20 {
		t.Skipf("file system reports %d data bytes: no SEEK_DATA holes here", img.dataBytes())
	}
	if hits := scanAll(img, "needle"); len(hits) != 1 || hits[0] != 12<<30+5 {
		t.Fatalf("scan found %#x, want [%#x]", hits, uint64(12<<30+5))
	}
}

// Large reads of a file image bypass the mapping and leave the right bytes.
func TestDropBehindReadsMatch(t *testing.T) {
	want := make([]byte, 3<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	img, err := OpenWith(tempFile(t, "data.raw", want), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	got := make([]byte, 2<<20+3)
	if err := img.ReadPhys([]physmem.Range{{Addr: 4097, Buf: got}}); err != nil || !bytes.Equal(got, want[4097:4097+len(got)]) {
		t.Fatalf("large read differs (%v)", err)
	}
}

func FuzzOpenZstd(f *testing.F) {
	var b bytes.Buffer
	enc, _ := zstd.NewWriter(&b)
	_, _ = enc.Write(make([]byte, 4<<20)) // a bomb for the 1 MiB bound below
	_ = enc.Close()
	f.Add(b.Bytes())
	f.Add(append([]byte(nil), zstdMagic...))
	enc2, _ := zstd.NewWriter(nil)
	f.Add(enc2.EncodeAll(elfCore(0, 1<<62, make([]byte, 4096), 1, 0), nil))
	f.Add(enc2.EncodeAll(elfCore(0, 8192, []byte("swapper/0"), 1, 0), nil))
	var seekable bytes.Buffer // frames of 3000 bytes, so a fuzzed table is near
	_ = WriteSeekable(&seekable, bytes.NewReader(elfCore(0, 8192, []byte("swapper/0"), 1, 0)), SeekableOptions{FrameSize: 3000,
		Compress: func(dst, content []byte) ([]byte, error) { return enc2.EncodeAll(content, dst), nil }})
	f.Add(seekable.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1 << 20
		path := filepath.Join(t.TempDir(), "in.zst")
		if err := os.WriteFile(path, in, 0o600); err != nil {
			t.Fatal(err)
		}
		img, err := OpenWith(path, Options{MaxSize: limit})
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrTooLarge", err)
			}
			return
		}
		defer img.Close()
		if img.dataBytes() > limit {
			t.Fatalf("%d data bytes past the %d bound", img.dataBytes(), limit)
		}
		scanAll(img, "swapper/0")
	})
}

func TestProgressFollowsScans(t *testing.T) {
	mem := make([]byte, 40<<20)
	for i := range mem {
		mem[i] = 1
	}
	var last, calls uint64
	img, err := OpenWith(tempFile(t, "p.raw", mem), Options{Progress: func(done, total uint64) {
		if done <= last || total != uint64(len(mem)) {
			t.Errorf("progress %d of %d after %d", done, total, last)
		}
		last = done
		calls++
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	_ = img.ReadPhys([]physmem.Range{{Addr: 0, Buf: make([]byte, 64)}}) // not a scan
	scanAll(img, "needle")
	scanAll(img, "needle") // a second pass reports nothing new
	if last != uint64(len(mem)) || calls < 2 || calls > 4 {
		t.Fatalf("progress reached %d in %d calls, want %d in a few", last, calls, len(mem))
	}
}
