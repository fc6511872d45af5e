package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	elfMagic  = []byte{0x7f, 'E', 'L', 'F'}
)

// Open opens a memory image of any supported kind, telling them apart by
// their first bytes: zstd is decompressed and sniffed again, an ELF file must
// be a QEMU dump-guest-memory core, anything else is a raw image whose offset
// is the physical address.
func Open(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open image: %w", err)
	}
	head, err := sniff(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: read %s: %w", path, err)
	}
	if !bytes.HasPrefix(head, zstdMagic) {
		return openFile(f, false)
	}
	mem, err := decompressZstd(f, path)
	f.Close()
	if err != nil {
		return nil, err
	}
	if head, err = sniff(mem); err != nil {
		mem.Close()
		return nil, fmt.Errorf("image: read decompressed %s: %w", path, err)
	}
	if bytes.HasPrefix(head, zstdMagic) {
		mem.Close()
		return nil, fmt.Errorf("image: %s: zstd inside zstd: %w", path, ErrFormat)
	}
	return openFile(mem, true)
}

// OpenRaw opens path as a raw image (offset = physical address) without
// sniffing.
func OpenRaw(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open image: %w", err)
	}
	return openAs(f, FormatRaw, false)
}

// OpenDump opens path as an uncompressed QEMU ELF dump.
func OpenDump(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open dump: %w", err)
	}
	return openAs(f, FormatELFDump, false)
}

func sniff(f *os.File) ([]byte, error) {
	head := make([]byte, 4)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return head[:n], nil
}

// openFile takes ownership of f and builds the image its content calls for.
func openFile(f *os.File, compressed bool) (*Image, error) {
	head, err := sniff(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: read %s: %w", f.Name(), err)
	}
	format := FormatRaw
	if bytes.HasPrefix(head, elfMagic) {
		format = FormatELFDump
	}
	return openAs(f, format, compressed)
}

// openAs takes ownership of f, maps it and parses it as format.
func openAs(f *os.File, format Format, compressed bool) (*Image, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: stat %s: %w", f.Name(), err)
	}
	src, unmap, err := mapFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	var img *Image
	if format == FormatELFDump {
		img, err = ParseDump(src, st.Size())
		if err != nil {
			err = fmt.Errorf("image: %s: %w", f.Name(), err)
		}
	} else {
		img, err = newImage(FormatRaw, []segment{{phys: 0, length: uint64(st.Size()), src: src}})
	}
	if err != nil {
		unmap()
		f.Close()
		return nil, err
	}
	img.compressed = compressed
	img.closers = append(img.closers, f.Close, unmap)
	return img, nil
}
