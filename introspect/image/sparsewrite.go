package image

import (
	"bytes"
	"os"
	"sync"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
)

var zeroPage [4096]byte

// sparseWriter writes a stream at increasing offsets of f, skipping the
// parts of each page that are all zeros (they read as zeros from the hole),
// and fails once the stream passes limit bytes. Close waits for the writes
// and reports the first that failed.
//
// The writes run on a goroutine of their own, beside the producer (the
// zstd decoder): writing to an in-memory file allocates, zeroes and fills
// its pages in the kernel, about a millisecond a MiB, which the decoder
// need not wait for. The non-zero runs are copied into a few batch
// buffers and handed over.
type sparseWriter struct {
	f     *os.File
	off   int64
	limit uint64
	over  bool
	pipe  *pwriter // started with the first data
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	if uint64(w.off)+uint64(len(p)) > w.limit {
		w.over = true
		return 0, ErrTooLarge
	}
	if w.pipe == nil {
		w.pipe = newPwriter(w.f)
	}
	if err := w.pipe.failed(); err != nil {
		return 0, err
	}
	base := w.off
	run := -1 // start in p of the pending run of non-zero pieces
	for done := 0; done < len(p); {
		// Up to the next page boundary of the file.
		n := min(len(p)-done, len(zeroPage)-int((base+int64(done))%int64(len(zeroPage))))
		if bytes.Equal(p[done:done+n], zeroPage[:n]) {
			if run >= 0 {
				w.pipe.add(p[run:done], base+int64(run))
				run = -1
			}
		} else if run < 0 {
			run = done
		}
		done += n
	}
	if run >= 0 {
		w.pipe.add(p[run:], base+int64(run))
	}
	w.off += int64(len(p))
	return len(p), nil
}

// Close waits for the writes handed over and returns the first error.
func (w *sparseWriter) Close() error {
	if w.pipe == nil {
		return nil
	}
	err := w.pipe.close()
	w.pipe = nil
	return err
}

// pwriter writes batches of runs to a file on its own goroutine.
type pwriter struct {
	f    *os.File
	free chan *pwriteBatch
	full chan *pwriteBatch
	cur  *pwriteBatch
	done chan struct{}
	mem  hugemem.Buffer // the batches' memory
	mu   sync.Mutex
	err  error // the first write that failed
}

// pwriteBatch is buffered bytes and the file offsets of its runs.
type pwriteBatch struct {
	buf  []byte
	runs []pwriteRun
}

type pwriteRun struct {
	off      int64
	from, to int // in buf
}

// pwriteBuffers batches of pwriteBatchSize: enough to keep the writer busy
// while the decoder fills the next.
const (
	pwriteBuffers   = 4
	pwriteBatchSize = 2 << 20
)

func newPwriter(f *os.File) *pwriter {
	w := &pwriter{f: f, free: make(chan *pwriteBatch, pwriteBuffers), full: make(chan *pwriteBatch, pwriteBuffers), done: make(chan struct{})}
	// Outside the Go heap, in huge pages: 8 MiB of fresh 4 KiB pages
	// would cost more to fault in than the writes it saves.
	w.mem = hugemem.Alloc(pwriteBuffers * pwriteBatchSize)
	mem := w.mem.B
	for i := range pwriteBuffers {
		w.free <- &pwriteBatch{buf: mem[i*pwriteBatchSize : i*pwriteBatchSize : (i+1)*pwriteBatchSize]}
	}
	go w.run()
	return w
}

func (w *pwriter) run() {
	defer close(w.done)
	for b := range w.full {
		for _, r := range b.runs {
			if w.failed() != nil {
				break
			}
			if _, err := w.f.WriteAt(b.buf[r.from:r.to], r.off); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
			}
		}
		b.buf, b.runs = b.buf[:0], b.runs[:0]
		w.free <- b
	}
}

func (w *pwriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// add copies p, to be written at off.
func (w *pwriter) add(p []byte, off int64) {
	for len(p) > 0 {
		if w.cur == nil {
			w.cur = <-w.free
		}
		b := w.cur
		n := min(len(p), cap(b.buf)-len(b.buf))
		from := len(b.buf)
		b.buf = append(b.buf, p[:n]...)
		if k := len(b.runs) - 1; k >= 0 && b.runs[k].to == from && b.runs[k].off+int64(from-b.runs[k].from) == off {
			b.runs[k].to += n // continues the last run
		} else {
			b.runs = append(b.runs, pwriteRun{off: off, from: from, to: from + n})
		}
		p, off = p[n:], off+int64(n)
		if len(b.buf) == cap(b.buf) {
			w.full <- b
			w.cur = nil
		}
	}
}

// close hands over the last batch, waits for the writes and frees the
// buffers.
func (w *pwriter) close() error {
	if w.cur != nil && len(w.cur.runs) > 0 {
		w.full <- w.cur
	}
	w.cur = nil
	close(w.full)
	<-w.done
	w.mem.Release()
	return w.failed()
}
