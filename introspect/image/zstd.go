package image

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// decompressZstd streams src into an anonymous in-memory file. Streaming
// keeps the Go heap at the decoder's window, whatever the image size.
func decompressZstd(src io.Reader, path string) (*os.File, error) {
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("image: zstd %s: %w", path, err)
	}
	defer dec.Close()
	out, err := anonFile("vmemtrans-" + filepath.Base(path))
	if err != nil {
		return nil, err
	}
	if _, err := dec.WriteTo(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("image: decompress %s: %w: %w", path, ErrFormat, err)
	}
	return out, nil
}
