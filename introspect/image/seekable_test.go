package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

func klauspostFrame(t testing.TB) CompressFunc {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return func(dst, content []byte) ([]byte, error) { return enc.EncodeAll(content, dst), nil }
}

func seekableBytes(t testing.TB, content []byte, frameSize int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSeekable(&b, bytes.NewReader(content), SeekableOptions{FrameSize: frameSize, Workers: 3, Compress: klauspostFrame(t)}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sparseContent has data pages, zero pages and zero runs across frames.
func sparseContent(n int) []byte {
	c := make([]byte, n)
	for i := range c {
		if (i/pageSize)%3 != 1 && (i/(64<<10))%5 != 2 {
			c[i] = byte(i*7 + i/pageSize)
		}
	}
	return c
}

func decodedFrames(img *Image) (n int) {
	z := img.segs[0].src.(*seekable)
	for i := range z.state {
		if z.state[i].done.Load() {
			n++
		}
	}
	return n
}

func TestSeekableDecodesOnlyWhatIsRead(t *testing.T) {
	content := sparseContent(8 << 20)
	img, err := Open(tempFile(t, "raw.zst", seekableBytes(t, content, 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, lazy := img.segs[0].src.(*seekable); !lazy || !img.Compressed() {
		t.Fatalf("seekable file opened as %T, want decompressed on demand", img.segs[0].src)
	}
	if n := decodedFrames(img); n != 1 {
		t.Fatalf("%d frames decompressed by Open, want 1 (the sniff)", n)
	}
	got := make([]byte, 100)
	if err := img.ReadPhys([]physmem.Range{{Addr: 5<<20 - 50, Buf: got}}); err != nil || !bytes.Equal(got, content[5<<20-50:5<<20+50]) {
		t.Fatalf("read across frames 4 and 5 differs (%v)", err)
	}
	if n := decodedFrames(img); n != 3 {
		t.Fatalf("%d frames decompressed after one read across two, want 3", n)
	}
}

// Frames of a size that is not a page multiple end inside pages: a page
// written by two frames is data for both, and lending still shows zero
// pages as Zero.
func TestSeekableLendsZeroPagesAcrossRaggedFrames(t *testing.T) {
	content := sparseContent(3<<20 + 777)
	img, err := Open(tempFile(t, "raw.zst", seekableBytes(t, content, 10000)))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	for _, addr := range []uint64{0, 9999, 123456, 3 << 19} {
		n := uint64(len(content)) - addr
		var got []byte
		zeroSegs := 0
		err := img.LendPhys(addr, n, func(s physmem.Segment) bool {
			switch {
			case s.Err != nil:
				t.Fatalf("segment %#x+%d: %v", s.Addr, s.Len, s.Err)
			case s.Zero:
				zeroSegs++
				got = append(got, make([]byte, s.Len)...)
			default:
				got = append(got, s.Data...)
			}
			return true
		})
		if err != nil || !bytes.Equal(got, content[addr:]) {
			t.Fatalf("lend from %#x: differs (%v)", addr, err)
		}
		if zeroSegs == 0 {
			t.Fatalf("lend from %#x: no Zero segment over content with zero runs", addr)
		}
	}
}

func TestSeekableCorruptFrameFailsOnlyItsReads(t *testing.T) {
	content := sparseContent(4 << 20)
	file := seekableBytes(t, content, 1<<20)
	frames, err := decodeSeekTable(bytes.NewReader(file), int64(len(file)), file[len(file)-seekFooterSize:], 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	bad := frames[2]
	for i := bad.comp + uint64(bad.compLen)/2; i < bad.comp+uint64(bad.compLen)/2+64; i++ {
		file[i] ^= 0x5a
	}
	img, err := Open(tempFile(t, "raw.zst", file))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	for round := range 2 { // a bad frame stays bad
		ranges := []physmem.Range{{Addr: 1 << 20, Buf: make([]byte, 4096)}, {Addr: 2<<20 + 8, Buf: make([]byte, 4096)}, {Addr: 3 << 20, Buf: make([]byte, 4096)}}
		err := img.ReadPhys(ranges)
		if !errors.Is(err, physmem.ErrPartial) || ranges[0].Err != nil || ranges[2].Err != nil || !errors.Is(ranges[1].Err, ErrFormat) {
			t.Fatalf("round %d: batch %v, ranges %v %v %v; want only the corrupt frame's range failed with ErrFormat", round, err, ranges[0].Err, ranges[1].Err, ranges[2].Err)
		}
		if !bytes.Equal(ranges[2].Buf, content[3<<20:3<<20+4096]) {
			t.Fatalf("round %d: the frame after the corrupt one reads wrong", round)
		}
	}
	var failed, good uint64
	_ = img.LendPhys(0, uint64(len(content)), func(s physmem.Segment) bool {
		if s.Err != nil {
			failed += s.Len
		} else {
			good += s.Len
		}
		return true
	})
	if failed != 1<<20 || good != uint64(len(content))-1<<20 {
		t.Fatalf("lend: %d bytes failed and %d good, want the one frame of 1 MiB failed", failed, good)
	}
}

func TestSeekableReadsAsOneStream(t *testing.T) {
	content := sparseContent(2<<20 + 5)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := dec.DecodeAll(seekableBytes(t, content, 300000), nil)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("a plain zstd decoder reads the seekable file wrong (%v)", err)
	}
}

func seekTableFile(entries [][2]uint32, frames []byte) []byte {
	return appendSeekTable(append([]byte(nil), frames...), entries)
}

func TestSeekTableRejectsMalformed(t *testing.T) {
	frame := klauspostFrame(t)
	one, _ := frame(nil, []byte("hello"))
	good := seekTableFile([][2]uint32{{uint32(len(one)), 5}}, one)
	if _, err := decodeSeekTable(bytes.NewReader(good), int64(len(good)), good[len(good)-seekFooterSize:], 100); err != nil {
		t.Fatalf("a good table: %v", err)
	}
	cases := map[string]struct {
		file []byte
		want error
	}{
		"sizes do not tile the file": {seekTableFile([][2]uint32{{uint32(len(one)) + 1, 5}}, one), ErrFormat},
		"expands past the bound":     {seekTableFile([][2]uint32{{uint32(len(one)), 101}}, one), ErrTooLarge},
		"content and no bytes":       {seekTableFile([][2]uint32{{0, 5}, {uint32(len(one)), 5}}, one), ErrFormat},
		"more frames than the file":  {func() []byte { b := bytes.Clone(good); binary.LittleEndian.PutUint32(b[len(b)-9:], 1000); return b }(), ErrFormat},
		"reserved bits":              {func() []byte { b := bytes.Clone(good); b[len(b)-5] = 0x04; return b }(), ErrFormat},
		"skippable magic":            {func() []byte { b := bytes.Clone(good); b[len(one)] ^= 1; return b }(), ErrFormat},
		"frame size field":           {func() []byte { b := bytes.Clone(good); b[len(one)+4]++; return b }(), ErrFormat},
	}
	for name, c := range cases {
		_, err := parseSeekTable(bytes.NewReader(c.file), int64(len(c.file)), 100)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		path := filepath.Join(t.TempDir(), "bad.zst")
		if err := os.WriteFile(path, c.file, 0o600); err != nil {
			t.Fatal(err)
		}
		if img, err := OpenWith(path, Options{MaxSize: 100}); err == nil {
			img.Close()
			t.Errorf("%s: Open accepted the file", name)
		}
	}
}

func FuzzSeekTable(f *testing.F) {
	frame, _ := zstd.NewWriter(nil)
	one := frame.EncodeAll([]byte("hello"), nil)
	f.Add(seekTableFile([][2]uint32{{uint32(len(one)), 5}}, one))
	f.Add(seekTableFile(nil, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 1 << 20
		frames, err := parseSeekTable(bytes.NewReader(in), int64(len(in)), limit)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrTooLarge", err)
			}
			return
		}
		var comp, decomp uint64
		for _, fr := range frames {
			if fr.comp != comp || fr.decomp != decomp {
				t.Fatalf("frame %+v not where the previous ones end (%d, %d)", fr, comp, decomp)
			}
			comp += uint64(fr.compLen)
			decomp += uint64(fr.decompLen)
		}
		if decomp > limit || comp > uint64(len(in)) {
			t.Fatalf("frames expand to %d bytes from %d, past the bound or the file", decomp, comp)
		}
	})
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A frame that fails to compress ends the writing: the rest of an endless
// source is neither read nor compressed.
func TestWriteSeekableStopsAtFirstError(t *testing.T) {
	var compressed atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- WriteSeekable(io.Discard, endless{}, SeekableOptions{FrameSize: 4096, Workers: 3,
			Compress: func(dst, content []byte) ([]byte, error) {
				if compressed.Add(1) == 5 {
					return nil, errors.New("disk full")
				}
				return append(dst, content[:1]...), nil
			}})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("WriteSeekable: %v, want the compression error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteSeekable kept reading after a frame failed")
	}
}

// Dense frames are decompressed in place and sparse ones aside: both give
// the content, and zero pages inside a dense frame are still lent as Zero.
func TestSeekableDenseAndSparseFrames(t *testing.T) {
	const frame = 1 << 20
	content := make([]byte, 4*frame)
	rnd := rand.New(rand.NewPCG(1, 2))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
	}
	fill(content[:frame])                   // frame 0: dense ...
	clear(content[3*pageSize : 5*pageSize]) // ... with two zero pages
	for p := 2*frame + 7*pageSize; p < 3*frame; p += 128 * pageSize {
		fill(content[p : p+pageSize]) // frame 2: a few pages of data
	}
	fill(content[3*frame:]) // frame 3: dense; frame 1 stays zeros
	img, err := Open(tempFile(t, "raw.zst", seekableBytes(t, content, frame)))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	z := img.segs[0].src.(*seekable)
	for i, want := range []bool{true, false, false, true} {
		if got := z.frames[i].dense(); got != want {
			t.Fatalf("frame %d taken for dense=%v, want %v: both ways must be covered", i, got, want)
		}
	}
	var got []byte
	var zeroAt []uint64
	err = img.LendPhys(0, uint64(len(content)), func(s physmem.Segment) bool {
		switch {
		case s.Err != nil:
			t.Fatalf("segment %#x+%d: %v", s.Addr, s.Len, s.Err)
		case s.Zero:
			zeroAt = append(zeroAt, s.Addr)
			got = append(got, make([]byte, s.Len)...)
		default:
			got = append(got, s.Data...)
		}
		return true
	})
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("lent content differs (%v)", err)
	}
	if len(zeroAt) == 0 || zeroAt[0] != 3*pageSize {
		t.Fatalf("zero segments at %#x, want the first at %#x (inside the dense frame 0)", zeroAt, 3*pageSize)
	}
	back := make([]byte, len(content))
	if err := img.ReadPhys([]physmem.Range{{Addr: 0, Buf: back}}); err != nil || !bytes.Equal(back, content) {
		t.Fatalf("read back differs (%v)", err)
	}
}
