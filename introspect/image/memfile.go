package image

import (
	"fmt"
	"io"
	"os"
)

type readerAt = io.ReaderAt

// OpenMemFile opens a live QEMU guest's RAM file (memory-backend-file,
// share=on) and places it in physical space by layout; a nil layout means
// PCLayout of the whole file. The file is read with pread, never mapped: a
// read of a page the guest never touched returns zeros without allocating it,
// and a live guest's memory is read as it is at that moment (pause the guest
// for a consistent view).
func OpenMemFile(path string, layout Layout) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open guest memory file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: stat %s: %w", path, err)
	}
	if layout == nil {
		layout = PCLayout(uint64(st.Size()))
	}
	segs, err := layout.segments(f, uint64(st.Size()))
	if err == nil {
		var img *Image
		if img, err = newImage(FormatMemFile, segs); err == nil {
			img.closers = append(img.closers, f.Close)
			return img, nil
		}
	}
	f.Close()
	return nil, fmt.Errorf("image: %s: %w", path, err)
}
