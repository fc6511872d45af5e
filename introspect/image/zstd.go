package image

import (
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
	_, err = dec.WriteTo(w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
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
