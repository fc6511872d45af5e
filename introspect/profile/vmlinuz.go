package profile

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// maxVmlinux caps a decompressed kernel; real ones are well under it.
const maxVmlinux = 512 << 20

var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// FromVmlinuz builds the profile of the kernel in a vmlinuz (bzImage) file.
// A plain vmlinux ELF file is accepted too.
func FromVmlinuz(path string) (*Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel image %s: %w", path, err)
	}
	return FromVmlinuzBytes(b)
}

// FromVmlinuzBytes is FromVmlinuz on an image already in memory.
func FromVmlinuzBytes(b []byte) (*Profile, error) {
	vmlinux, err := ExtractVmlinux(b)
	if err != nil {
		return nil, err
	}
	return FromVmlinux(vmlinux)
}

// ExtractVmlinux returns the vmlinux ELF inside a bzImage: the first
// xz, zstd or gzip stream in it that decompresses to an ELF file. An ELF
// input is returned as it is.
func ExtractVmlinux(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, elfMagic) {
		return b, nil
	}
	type codec struct {
		magic  []byte
		decode func([]byte) ([]byte, error)
	}
	codecs := []codec{
		{xzMagic, func(p []byte) ([]byte, error) { return unxz(p, maxVmlinux) }},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, unzstd},
		{[]byte{0x1f, 0x8b, 0x08}, gunzip},
	}
	var firstErr error
	for _, c := range codecs {
		for off := 0; ; {
			i := bytes.Index(b[off:], c.magic)
			if i < 0 {
				break
			}
			off += i
			out, err := c.decode(b[off:])
			if err == nil && bytes.HasPrefix(out, elfMagic) {
				return out, nil
			}
			if err == nil {
				err = fmt.Errorf("payload at %#x is not an ELF file: %w", off, ErrNoPayload)
			}
			if firstErr == nil {
				firstErr = err
			}
			off++
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("kernel image of %d bytes: %w", len(b), ErrNoPayload)
}

func unzstd(b []byte) ([]byte, error) {
	d, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxVmlinux))
	if err != nil {
		return nil, fmt.Errorf("zstd payload: %w: %w", ErrNoPayload, err)
	}
	defer d.Close()
	return readCapped(d, "zstd")
}

func gunzip(b []byte) ([]byte, error) {
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip payload: %w: %w", ErrNoPayload, err)
	}
	z.Multistream(false)
	return readCapped(z, "gzip")
}

// readCapped reads a decompressor to its end of stream; trailing garbage
// after a complete stream is not an error, a cut stream is.
func readCapped(r io.Reader, what string) ([]byte, error) {
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(r, maxVmlinux+1))
	if n > maxVmlinux {
		return nil, fmt.Errorf("%s payload over %d bytes: %w", what, maxVmlinux, ErrNoPayload)
	}
	if err != nil && !bytes.HasPrefix(out.Bytes(), elfMagic) {
		return nil, fmt.Errorf("%s payload: %w: %w", what, ErrNoPayload, err)
	}
	return out.Bytes(), nil
}
