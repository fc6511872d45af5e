package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
)

// maxLazyFrame bounds one frame, compressed and decompressed, that a
// seekable image decompresses on demand: a read holds both while it copies
// the content out. A file with larger frames is decompressed whole, as a
// stream.
const maxLazyFrame = 64 << 20

// seekable is the content of a seekable zstd file, decompressed frame by
// frame on first read into anonymous memory backed by huge pages (a 4 KiB
// fault per page of a memory file cost more than the decompression) and
// shown in place. A dense frame is decompressed straight into that memory;
// a sparse one aside, and only its pages with data are copied in, so
// memory that holds only zeros is never faulted in. Zero pages are lent as
// Zero segments either way.
//
// Bad frames (corrupt data, a size that differs from the seek table) fail
// the reads that touch them, each time, and nothing else.
type seekable struct {
	name    string
	src     *os.File // the compressed file
	frames  []seekFrame
	size    uint64
	mem     memory // the decompressed content; never written where zero
	release func()
	nonZero []atomic.Uint64 // one bit per page of mem: written with data
	state   []frameState
	dec     *zstd.Decoder
	bufMu   sync.Mutex
	bufs    [][]byte       // spare frame buffers, kept warm for the next frame
	ahead   sync.WaitGroup // decompressions started ahead of the reads
	depth   int            // how many frames a read decompresses ahead
}

type frameState struct {
	mu      sync.Mutex
	claimed atomic.Bool // a goroutine was started to decompress it
	done    atomic.Bool
	err     error // why the frame could not be decompressed; done is set too
}

// openSeekable takes the frames of src (a seekable zstd file, already
// checked) and prepares their decompression. ok is false when they are
// better decompressed as a stream (frames too large, no mapping here).
func openSeekable(src *os.File, frames []seekFrame) (z *seekable, ok bool, err error) {
	var size uint64
	for _, fr := range frames {
		if fr.decompLen > maxLazyFrame || fr.compLen > maxLazyFrame {
			return nil, false, nil
		}
		size += uint64(fr.decompLen)
	}
	if runtime.GOOS != "linux" {
		return nil, false, nil // no lazily backed mapping: the heap would hold it all
	}
	mem, release, err := hugemem.Reserve(int(size))
	if err != nil {
		return nil, false, fmt.Errorf("image: %s: %w", src.Name(), err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(maxLazyFrame))
	if err != nil {
		release()
		return nil, false, fmt.Errorf("image: zstd %s: %w", src.Name(), err)
	}
	pages := (size + pageSize - 1) / pageSize
	return &seekable{
		name: src.Name(), src: src, frames: frames, size: size, mem: mem, release: release,
		nonZero: make([]atomic.Uint64, (pages+63)/64), state: make([]frameState, len(frames)), dec: dec,
		depth: runtime.GOMAXPROCS(0) - 1,
	}, true, nil
}

const pageSize = 4096

func (z *seekable) Close() error {
	z.ahead.Wait() // they write into mem
	z.dec.Close()
	z.release()
	return z.src.Close()
}

func (z *seekable) written(page uint64) bool {
	return z.nonZero[page/64].Load()&(1<<(page%64)) != 0
}

// decode decompresses frame i unless that was done or failed before.
func (z *seekable) decode(i int) error {
	st := &z.state[i]
	if st.done.Load() {
		return st.err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.done.Load() {
		st.err = z.decodeFrame(z.frames[i], i)
		st.done.Store(true)
	}
	return st.err
}

// buffer returns a buffer of n bytes, a spare one when it is large
// enough: a fresh megabyte costs more in page faults than decompressing it.
func (z *seekable) buffer(n int) []byte {
	z.bufMu.Lock()
	defer z.bufMu.Unlock()
	for i, b := range slices.Backward(z.bufs) {
		if cap(b) >= n {
			z.bufs = slices.Delete(z.bufs, i, i+1)
			return b[:n]
		}
	}
	return make([]byte, n, max(n, DefaultFrameSize))
}

// putBuffer keeps b for later frames, as many as can be in use at once.
func (z *seekable) putBuffer(b []byte) {
	z.bufMu.Lock()
	defer z.bufMu.Unlock()
	if len(z.bufs) < 2*(z.depth+1) {
		z.bufs = append(z.bufs, b)
	}
}

// A frame whose compressed size is at least this fraction of its content
// is taken for dense (in the fixtures, 58 of 61 such frames were a quarter
// data or more, and 9 of 200 below it): it is decompressed straight into
// the image's memory, with no copy. A sparser frame is decompressed aside
// and only its pages with data are copied, so its zero pages are never
// written.
const denseFrameRatio = 64

func (fr seekFrame) dense() bool {
	return uint64(fr.compLen)*denseFrameRatio >= uint64(fr.decompLen)
}

func (z *seekable) decodeFrame(fr seekFrame, i int) error {
	if fr.decompLen == 0 {
		return nil
	}
	cp := z.buffer(int(fr.compLen))
	defer z.putBuffer(cp)
	if _, err := z.src.ReadAt(cp, int64(fr.comp)); err != nil {
		return fmt.Errorf("zstd frame %d of %s: read: %w", i, z.name, err)
	}
	base := fr.decomp
	frame := z.mem[base : base+uint64(fr.decompLen)]
	if fr.dense() {
		z.adviseHuge(base, len(frame))
		content, err := z.dec.DecodeAll(cp, frame[:0:len(frame)])
		if err != nil {
			return fmt.Errorf("zstd frame %d of %s: %w: %w", i, z.name, ErrFormat, err)
		}
		if len(content) != len(frame) {
			return fmt.Errorf("zstd frame %d of %s holds %d bytes, its seek table says %d: %w", i, z.name, len(content), fr.decompLen, ErrFormat)
		}
		if unsafe.SliceData(content) != unsafe.SliceData(frame) {
			copy(frame, content) // the decoder chose a buffer of its own
		}
		runs, _ := dataRuns(base, frame)
		z.markData(base, runs)
		return nil
	}
	dp := z.buffer(int(fr.decompLen))
	defer z.putBuffer(dp)
	content, err := z.dec.DecodeAll(cp, dp[:0])
	if err != nil {
		return fmt.Errorf("zstd frame %d of %s: %w: %w", i, z.name, ErrFormat, err)
	}
	if len(content) != int(fr.decompLen) {
		return fmt.Errorf("zstd frame %d of %s holds %d bytes, its seek table says %d: %w", i, z.name, len(content), fr.decompLen, ErrFormat)
	}
	// Copy the runs of pages that are not all zeros. A frame that is a
	// quarter data or more gets huge pages (one fault per 2 MiB instead of
	// 512, and at most 4 times its data in memory); a sparser one keeps
	// 4 KiB pages, so scattered data does not pin 2 MiB per page.
	runs, data := dataRuns(base, content)
	if 4*data >= len(content) {
		z.adviseHuge(base, len(content))
	}
	for _, r := range runs {
		copy(frame[r[0]:], content[r[0]:r[1]])
	}
	z.markData(base, runs)
	return nil
}

// dataRuns returns the runs of pages of content (which lies at base) that
// are not all zeros, and how many bytes they hold.
func dataRuns(base uint64, content []byte) (runs [][2]int, data int) {
	run := -1
	for done := 0; done < len(content); {
		n := min(len(content)-done, pageSize-int((base+uint64(done))%pageSize))
		if bytes.Equal(content[done:done+n], zeroPage[:n]) {
			if run >= 0 {
				runs = append(runs, [2]int{run, done})
				run = -1
			}
		} else {
			if run < 0 {
				run = done
			}
			data += n
		}
		done += n
	}
	if run >= 0 {
		runs = append(runs, [2]int{run, len(content)})
	}
	return runs, data
}

// markData records the pages of the runs of a frame at base that hold data.
func (z *seekable) markData(base uint64, runs [][2]int) {
	for _, r := range runs {
		for p := (base + uint64(r[0])) / pageSize; p <= (base+uint64(r[1])-1)/pageSize; p++ {
			z.nonZero[p/64].Or(1 << (p % 64))
		}
	}
}

// adviseHuge asks for huge pages over the huge pages that [base, base+n)
// of mem touches.
func (z *seekable) adviseHuge(base uint64, n int) {
	hugemem.Advise(z.mem[base&^(hugemem.Size-1) : min(uint64(len(z.mem)), (base+uint64(n)+hugemem.Size-1)&^(hugemem.Size-1))])
}

// decodeAhead starts the decompression of the frames after i that begin
// before end, up to depth of them, on goroutines of their own: while the
// caller shows frame i the next ones are being made. It looks no further,
// so a reader that stops early (a search that found its match) wastes at
// most those frames.
func (z *seekable) decodeAhead(i int, end uint64) {
	for j := i + 1; j <= i+z.depth && j < len(z.frames) && z.frames[j].decomp < end; j++ {
		st := &z.state[j]
		if !st.done.Load() && st.claimed.CompareAndSwap(false, true) {
			z.ahead.Go(func() { _ = z.decode(j) })
		}
	}
}

// visit shows [off, end) of the content in runs, decompressing the frames
// it covers: data in place from the mapping, nil for zeros, or the error
// of a frame that cannot be decompressed. It stops when fn returns false.
func (z *seekable) visit(off, end uint64, fn func(off, n uint64, data []byte, err error) bool) bool {
	end = min(end, z.size)
	i := sort.Search(len(z.frames), func(i int) bool { return z.frames[i].decomp+uint64(z.frames[i].decompLen) > off })
	runStart, runEnd, runData := off, off, false // pending run, merged across frames
	flush := func() bool {
		if runEnd == runStart {
			return true
		}
		var data []byte
		if runData {
			data = z.mem[runStart:runEnd]
		}
		ok := fn(runStart, runEnd-runStart, data, nil)
		runStart = runEnd
		return ok
	}
	for a := off; a < end && i < len(z.frames); i++ {
		fr := z.frames[i]
		stop := min(end, fr.decomp+uint64(fr.decompLen))
		z.decodeAhead(i, end)
		if err := z.decode(i); err != nil {
			if !flush() || !fn(a, stop-a, nil, err) {
				return false
			}
			a, runStart, runEnd = stop, stop, stop
			continue
		}
		for a < stop {
			data := z.written(a / pageSize)
			b := min(stop, (a/pageSize+1)*pageSize)
			for b < stop && z.written(b/pageSize) == data {
				b = min(stop, b+pageSize)
			}
			if data != runData && !flush() {
				return false
			}
			runData, runEnd, a = data, b, b
		}
	}
	return flush()
}

// ReadAt implements io.ReaderAt over the decompressed content.
func (z *seekable) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || uint64(off) > z.size {
		return 0, io.EOF
	}
	start := uint64(off)
	var rerr error
	z.visit(start, start+uint64(len(p)), func(a, n uint64, data []byte, err error) bool {
		if err != nil {
			rerr = err
			return false
		}
		dst := p[a-start : a-start+n]
		if data == nil {
			clear(dst)
		} else {
			copy(dst, data)
		}
		return true
	})
	if rerr != nil {
		return 0, rerr
	}
	if n := z.size - start; n < uint64(len(p)) {
		return int(n), io.EOF
	}
	return len(p), nil
}
