package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// Kernel images are xz-compressed with the x86 BCJ filter in front of LZMA2
// (scripts/xz_wrap.sh); github.com/ulikunitz/xz decodes LZMA2 but knows no
// BCJ, so the container is read here and the filter undone by bcjX86.

const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

// maxDictCap bounds the LZMA2 dictionary (kernels use 32 MiB), so a
// hostile header cannot make the decoder allocate gigabytes.
const maxDictCap = 128 << 20

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// unxz decodes the first block of the xz stream at the start of b, ignoring
// anything after it (a bzImage carries trailing data). Output is capped at
// limit bytes.
func unxz(b []byte, limit int) ([]byte, error) {
	if len(b) < 12+8 || !bytes.HasPrefix(b, xzMagic) {
		return nil, fmt.Errorf("xz stream header: %w", ErrNoPayload)
	}
	p := b[12:]
	hsize := (int(p[0]) + 1) * 4
	if p[0] == 0 || len(p) < hsize {
		return nil, fmt.Errorf("xz block header truncated: %w", ErrNoPayload)
	}
	hdr := p[1 : hsize-4]
	flags := hdr[0]
	nfilters := int(flags&3) + 1
	hdr = hdr[1:]
	var err error
	if flags&0x40 != 0 { // compressed size
		if _, hdr, err = uvarint(hdr); err != nil {
			return nil, err
		}
	}
	if flags&0x80 != 0 { // uncompressed size
		if _, hdr, err = uvarint(hdr); err != nil {
			return nil, err
		}
	}
	var bcj bool
	var bcjStart uint32
	dictCap := -1
	for i := 0; i < nfilters; i++ {
		var id, psize uint64
		if id, hdr, err = uvarint(hdr); err != nil {
			return nil, err
		}
		if psize, hdr, err = uvarint(hdr); err != nil {
			return nil, err
		}
		if uint64(len(hdr)) < psize {
			return nil, fmt.Errorf("xz filter properties truncated: %w", ErrNoPayload)
		}
		props := hdr[:psize]
		hdr = hdr[psize:]
		switch {
		case id == xzFilterX86 && i < nfilters-1:
			bcj = true
			if psize == 4 {
				bcjStart = binary.LittleEndian.Uint32(props)
			} else if psize != 0 {
				return nil, fmt.Errorf("xz x86 filter properties of %d bytes: %w", psize, ErrNoPayload)
			}
		case id == xzFilterLZMA2 && i == nfilters-1 && psize == 1:
			d := props[0] & 0x3f
			if d > 40 {
				return nil, fmt.Errorf("xz lzma2 dictionary code %d: %w", d, ErrNoPayload)
			}
			if d == 40 {
				dictCap = 0xffffffff
			} else {
				dictCap = (2 | int(d&1)) << (d/2 + 11)
			}
		default:
			return nil, fmt.Errorf("xz filter %#x unsupported: %w", id, ErrNoPayload)
		}
	}
	if dictCap < 0 {
		return nil, fmt.Errorf("xz block without lzma2: %w", ErrNoPayload)
	}
	if dictCap < lzma.MinDictCap {
		dictCap = lzma.MinDictCap
	}
	if dictCap > maxDictCap {
		return nil, fmt.Errorf("xz dictionary of %d bytes too large: %w", dictCap, ErrNoPayload)
	}
	r, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(bytes.NewReader(p[hsize:]))
	if err != nil {
		return nil, fmt.Errorf("xz lzma2 stream: %w: %w", ErrNoPayload, err)
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("xz lzma2 data: %w: %w", ErrNoPayload, err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("xz payload over %d bytes: %w", limit, ErrNoPayload)
	}
	data := out.Bytes()
	if bcj {
		bcjX86(data, bcjStart)
	}
	return data, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("xz varint: %w", ErrNoPayload)
	}
	return v, b[n:], nil
}
