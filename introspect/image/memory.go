package image

import "io"

// memory serves ReadAt from a byte slice (a mapping or a test buffer). Unlike
// bytes.Reader it keeps no state, so concurrent readers need no lock.
type memory []byte

func (b memory) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// NewBytes returns an Image whose physical address i is b[i]. b is used in
// place, not copied: the caller must not change it while reads run.
func NewBytes(b []byte) *Image {
	img, _ := newImage(FormatBytes, []segment{{phys: 0, length: uint64(len(b)), src: memory(b)}})
	return img
}
