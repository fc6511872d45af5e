package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// decompressZstd streams src into an anonymous in-memory file, refusing to
// expand beyond limit bytes. Streaming keeps the Go heap at the decoder's
// window, whatever the image size; all-zero pages are never written, so
// they stay holes in the file and cost no memory (a guest's free memory,
// or a "zip bomb" of zeros).
func decompressZstd(src io.Reader, path string, head []byte, limit uint64) (*os.File, error) {
	var h zstd.Header
	if err := h.Decode(head); err == nil && h.HasFCS && h.FrameContentSize > limit {
		return nil, tooLarge(path, fmt.Sprintf("declares %d bytes", h.FrameContentSize), limit)
	}
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("image: zstd %s: %w", path, err)
	}
	defer dec.Close()
	out, err := anonFile("vmemtrans-" + filepath.Base(path))
	if err != nil {
		return nil, err
	}
	w := &sparseWriter{f: out, limit: limit}
	if _, err := dec.WriteTo(w); err != nil {
		out.Close()
		if w.over {
			return nil, tooLarge(path, "expands", limit)
		}
		return nil, fmt.Errorf("image: decompress %s: %w: %w", path, ErrFormat, err)
	}
	// The size covers a trailing run of zeros that was never written.
	if err := out.Truncate(w.off); err != nil {
		out.Close()
		return nil, fmt.Errorf("image: decompress %s: %w", path, err)
	}
	return out, nil
}

func tooLarge(path, what string, limit uint64) error {
	return fmt.Errorf("image: %s %s beyond the %d-byte bound (raise it with --max-image-size): %w", path, what, limit, ErrTooLarge)
}

var zeroPage [4096]byte

// sparseWriter writes a stream at increasing offsets of f, skipping the
// parts of each page that are all zeros (they read as zeros from the hole),
// and fails once the stream passes limit bytes.
type sparseWriter struct {
	f     *os.File
	off   int64
	limit uint64
	over  bool
}

func (w *sparseWriter) Write(p []byte) (int, error) {
	if uint64(w.off)+uint64(len(p)) > w.limit {
		w.over = true
		return 0, ErrTooLarge
	}
	base := w.off
	run := -1 // start in p of the pending run of non-zero pieces
	flush := func(end int) error {
		if run >= 0 {
			if _, err := w.f.WriteAt(p[run:end], base+int64(run)); err != nil {
				return err
			}
			run = -1
		}
		return nil
	}
	for done := 0; done < len(p); {
		// Up to the next page boundary of the file.
		n := min(len(p)-done, len(zeroPage)-int((base+int64(done))%int64(len(zeroPage))))
		if bytes.Equal(p[done:done+n], zeroPage[:n]) {
			if err := flush(done); err != nil {
				return 0, err
			}
		} else if run < 0 {
			run = done
		}
		done += n
	}
	if err := flush(len(p)); err != nil {
		return 0, err
	}
	w.off += int64(len(p))
	return len(p), nil
}
