package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/internal/bench"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/source"
)

// growDump writes a copy of the QEMU ELF dump src with the guest's RAM grown
// to gib GiB, laid out as QEMU's pc machine places it (low RAM up to 3 GiB,
// the rest from 4 GiB). The added RAM is file-backed PT_LOADs whose bytes
// are holes on disk: what dump-guest-memory of a mostly idle large guest
// looks like to a reader, at no disk cost.
func growDump(tb testing.TB, src []byte, dst string, gib uint64) {
	tb.Helper()
	head, tableOff, table := grownDump(src, gib)
	f, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(head); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteAt(table, int64(tableOff)); err != nil {
		tb.Fatal(err)
	}
}

// grownDump is the grown dump of growDump: head at offset 0, zeros up to
// tableOff, and the program header table there.
func grownDump(src []byte, gib uint64) (head []byte, tableOff uint64, table []byte) {
	le := binary.LittleEndian
	phoff, phentsize, phnum := le.Uint64(src[32:]), uint64(le.Uint16(src[54:])), uint64(le.Uint16(src[56:]))
	ram := gib << 30
	lowEnd := min(ram, 0xc0000000)
	type seg struct{ phys, size uint64 }
	added := []seg{{0x10000000, lowEnd - 0x10000000}} // the fixture's RAM ends at 256 MiB
	if ram > lowEnd {
		added = append(added, seg{1 << 32, ram - lowEnd})
	}
	off := (uint64(len(src)) + 4095) &^ 4095
	table = slices.Clone(src[phoff : phoff+phentsize*phnum])
	for _, s := range added {
		var ph [56]byte
		le.PutUint32(ph[0:], 1) // PT_LOAD
		le.PutUint32(ph[4:], 7)
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], s.phys)
		le.PutUint64(ph[24:], s.phys)
		le.PutUint64(ph[32:], s.size)
		le.PutUint64(ph[40:], s.size)
		table = append(table, ph[:phentsize]...)
		off += s.size
	}
	head = slices.Clone(src)
	le.PutUint64(head[32:], off) // the program headers move behind the added RAM
	le.PutUint16(head[56:], uint16(phnum)+uint16(len(added)))
	return head, off, table
}

// zeros reads as n zero bytes.
type zeros struct{ n uint64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := int(min(uint64(len(p)), z.n))
	clear(p[:k])
	z.n -= uint64(k)
	return k, nil
}

// growSeekable writes the grown dump of growDump as a seekable zstd file,
// as `vmemtrans image compress` would (frames of 1 MiB); the frames of
// zeros are compressed once. gib 0 writes src itself.
func growSeekable(tb testing.TB, src []byte, dst string, gib uint64) {
	tb.Helper()
	var stream io.Reader = bytes.NewReader(src)
	if gib > 0 {
		head, tableOff, table := grownDump(src, gib)
		stream = io.MultiReader(bytes.NewReader(head), &zeros{tableOff - uint64(len(head))}, bytes.NewReader(table))
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	zero := make([]byte, image.DefaultFrameSize)
	zeroFrame := enc.EncodeAll(zero, nil)
	f, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	err = image.WriteSeekable(w, stream, image.SeekableOptions{Workers: runtime.GOMAXPROCS(0),
		Compress: func(dst, content []byte) ([]byte, error) {
			if len(content) == len(zero) && bytes.Equal(content, zero) {
				return append(dst, zeroFrame...), nil
			}
			return enc.EncodeAll(content, dst), nil
		}})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// fixtureGuest is the 256 MiB fixture guest's dump, decompressed.
func fixtureGuest(tb testing.TB) []byte {
	tb.Helper()
	zf, err := os.Open(fixturePath("linux-6.1-clean", "memory.elf.zst"))
	if err != nil {
		tb.Skipf("fixture: %v", err)
	}
	defer zf.Close()
	zr, err := zstd.NewReader(zf)
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// scaleGuests decompresses the 256 MiB fixture and grows it to 8 and 64 GiB
// in dir; it returns the three images, smallest first.
func scaleGuests(tb testing.TB, dir string) (names, paths []string) {
	tb.Helper()
	raw := fixtureGuest(tb)
	base := filepath.Join(dir, "guest-256m.elf")
	if err := os.WriteFile(base, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	names, paths = []string{"256m"}, []string{base}
	for _, gib := range []uint64{8, 64} {
		p := filepath.Join(dir, fmt.Sprintf("guest-%dg.elf", gib))
		growDump(tb, raw, p, gib)
		names, paths = append(names, fmt.Sprintf("%dg", gib)), append(paths, p)
	}
	return names, paths
}

// scaleGuestsSeekable is scaleGuests in seekable zstd, both compressed
// alike: the 256 MiB fixture guest and the same guest grown to 64 GiB.
func scaleGuestsSeekable(tb testing.TB, dir string) (names, paths []string) {
	tb.Helper()
	raw := fixtureGuest(tb)
	for _, gib := range []uint64{0, 64} {
		name := "256m"
		if gib > 0 {
			name = fmt.Sprintf("%dg", gib)
		}
		p := filepath.Join(dir, "guest-"+name+".elf.zst")
		growSeekable(tb, raw, p, gib)
		names, paths = append(names, name), append(paths, p)
	}
	return names, paths
}

// idsCommands are the IDS commands measured, each as the CLI runs it: open
// the image, find the kernel, build its profile, walk.
var idsCommands = []struct {
	name string
	run  func(*source.Source) error
}{
	{"ps", func(s *source.Source) error { _, err := linux.Tasks(s.Kernel, linux.Options{}); return err }},
	{"check-syscalls", func(s *source.Source) error { _, err := linux.CheckSyscalls(s.Kernel, linux.Options{}); return err }},
	{"check-hidden", func(s *source.Source) error { _, err := linux.HiddenTasks(s.Kernel, linux.Options{}); return err }},
}

func runIDS(tb testing.TB, path string, run func(*source.Source) error) time.Duration {
	t0 := time.Now()
	src, err := source.Open(context.Background(), source.Spec{Image: path, MaxImageSize: 128 << 30})
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	defer src.Close()
	if err := run(src); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return time.Since(t0)
}

// BenchmarkIDSGuestSize measures ps and the checks on the 256 MiB fixture
// guest and on the same guest grown to 8 and 64 GiB (sparse), interleaved in
// one run, and reports each command's time on a large guest as a ratio of
// its time on the small one: the median of the per-iteration ratios (runs
// next to each other share the machine's load) and the ratio of the fastest
// runs (the least disturbed). The goal is at most 1.2: nothing an IDS
// command does should scale with guest RAM.
//
//	go test -run '^$' -bench IDSGuestSize -benchtime 5x ./test/
func BenchmarkIDSGuestSize(b *testing.B) {
	names, paths := scaleGuests(b, b.TempDir())
	benchGuestSizes(b, names, paths)
}

// BenchmarkIDSGuestSizeSeekable is BenchmarkIDSGuestSize on seekable zstd
// images: the 256 MiB fixture guest against the same guest grown to 64 GiB,
// compressed alike, which a reader decompresses only where it reads.
//
//	go test -run '^$' -bench IDSGuestSizeSeekable -benchtime 5x ./test/
func BenchmarkIDSGuestSizeSeekable(b *testing.B) {
	names, paths := scaleGuestsSeekable(b, b.TempDir())
	benchGuestSizes(b, names, paths)
}

func benchGuestSizes(b *testing.B, names, paths []string) {
	times := map[string][]float64{} // command/guest -> seconds, one per iteration
	for round := 0; b.Loop(); round++ {
		for _, c := range idsCommands {
			for j := range paths { // each guest goes first in turn: no order bias
				i := (round + j) % len(paths)
				k := c.name + "/" + names[i]
				times[k] = append(times[k], runIDS(b, paths[i], c.run).Seconds())
			}
		}
	}
	for _, c := range idsCommands {
		base := times[c.name+"/"+names[0]]
		b.ReportMetric(bench.Median(base)*1e3, c.name+"_256m_ms")
		for _, n := range names[1:] {
			large := times[c.name+"/"+n]
			ratios := make([]float64, len(base))
			for i := range base {
				ratios[i] = large[i] / base[i]
			}
			b.ReportMetric(bench.Median(ratios), c.name+"_"+n+"/256m")
			b.ReportMetric(slices.Min(large)/slices.Min(base), c.name+"_"+n+"/256m_fastest")
		}
	}
}
