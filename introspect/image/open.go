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

// IsZstd reports whether a file starting with head is zstd compressed
// (one stream or the seekable format).
func IsZstd(head []byte) bool { return bytes.HasPrefix(head, zstdMagic) }

// DefaultMaxSize is the default bound on the memory an image file may hold
// or expand to: a guest of 1 TiB (large-memory guests are what gets split;
// their dumps are sparse, and the bound is against malformed images).
const DefaultMaxSize = 1 << 40

// Options bound what opening an image may cost.
type Options struct {
	// MaxSize bounds the bytes of guest memory a file may hold: a raw
	// or ELF file's size, or what a zstd file expands to (0:
	// DefaultMaxSize). Beyond it Open fails with ErrTooLarge.
	MaxSize uint64
	// Progress, when set, is told how far scans (reads of 1 MiB and
	// more) have reached: the highest address read so far, and Size.
	Progress func(done, total uint64)
}

func (o Options) maxSize() uint64 {
	if o.MaxSize == 0 {
		return DefaultMaxSize
	}
	return o.MaxSize
}

// Open opens a memory image of any supported kind with default Options.
func Open(path string) (*Image, error) { return OpenWith(path, Options{}) }

// OpenWith opens a memory image of any supported kind, telling them apart by
// their first bytes: zstd is decompressed and sniffed again, an ELF file must
// be a QEMU dump-guest-memory core, anything else is a raw image whose offset
// is the physical address. Holes in the file (and zero pages of a zstd
// image, which are never stored) are skipped by scans and cost no memory.
func OpenWith(path string, opts Options) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open image: %w", err)
	}
	head, err := sniffN(f, 18) // enough for a zstd frame header
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: read %s: %w", path, err)
	}
	if !bytes.HasPrefix(head, zstdMagic) {
		return openFile(f, false, opts)
	}
	if st, err := f.Stat(); err == nil && hasSeekFooter(f, st.Size()) {
		frames, err := parseSeekTable(f, st.Size(), opts.maxSize())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("image: %s: %w", path, err)
		}
		z, ok, err := openSeekable(f, frames)
		if err != nil {
			f.Close()
			return nil, err
		}
		if ok {
			return openSeekableImage(z, opts)
		}
	}
	mem, err := decompressZstd(f, path, head, opts.maxSize())
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
	return openFile(mem, true, opts)
}

// openSeekableImage takes ownership of z and builds the image its content
// calls for; only the frames that the parse reads are decompressed.
func openSeekableImage(z *seekable, opts Options) (*Image, error) {
	head := make([]byte, 4)
	n, err := z.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		z.Close()
		return nil, fmt.Errorf("image: read the decompressed header: %w", err)
	}
	var img *Image
	switch head = head[:n]; {
	case bytes.HasPrefix(head, zstdMagic):
		err = fmt.Errorf("image: %s: zstd inside zstd: %w", z.name, ErrFormat)
	case bytes.HasPrefix(head, elfMagic):
		if img, err = parseDump(z, int64(z.size), nil); err != nil {
			err = fmt.Errorf("image: %s: %w", z.name, err)
		}
	default:
		img, err = newImage(FormatRaw, []segment{{phys: 0, length: z.size, src: z}})
	}
	if err != nil {
		z.Close()
		return nil, err
	}
	img.compressed = true
	if opts.Progress != nil {
		img.progress = &progress{report: opts.Progress}
	}
	img.closers = append(img.closers, z.Close)
	return img, nil
}

// OpenRaw opens path as a raw image (offset = physical address) without
// sniffing.
func OpenRaw(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open image: %w", err)
	}
	return openAs(f, FormatRaw, false, Options{})
}

// OpenDump opens path as an uncompressed QEMU ELF dump.
func OpenDump(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image: open dump: %w", err)
	}
	return openAs(f, FormatELFDump, false, Options{})
}

func sniff(f *os.File) ([]byte, error) { return sniffN(f, 4) }

func sniffN(f *os.File, n int) ([]byte, error) {
	head := make([]byte, n)
	got, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return head[:got], nil
}

// openFile takes ownership of f and builds the image its content calls for.
func openFile(f *os.File, compressed bool, opts Options) (*Image, error) {
	head, err := sniff(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: read %s: %w", f.Name(), err)
	}
	format := FormatRaw
	if bytes.HasPrefix(head, elfMagic) {
		format = FormatELFDump
	}
	return openAs(f, format, compressed, opts)
}

// openAs takes ownership of f, maps it and parses it as format.
func openAs(f *os.File, format Format, compressed bool, opts Options) (*Image, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image: stat %s: %w", f.Name(), err)
	}
	if uint64(st.Size()) > opts.maxSize() {
		f.Close()
		return nil, tooLarge(f.Name(), fmt.Sprintf("holds %d bytes,", st.Size()), opts.maxSize())
	}
	exts, err := fileExtents(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	src, unmap, err := mapFile(f, st.Size(), !compressed)
	if err != nil {
		f.Close()
		return nil, err
	}
	var img *Image
	if format == FormatELFDump {
		img, err = parseDump(src, st.Size(), exts)
		if err != nil {
			err = fmt.Errorf("image: %s: %w", f.Name(), err)
		}
	} else {
		img, err = newImage(FormatRaw, splitByExtents([]segment{{phys: 0, length: uint64(st.Size()), src: src}}, exts))
	}
	if err != nil {
		unmap()
		f.Close()
		return nil, err
	}
	img.compressed = compressed
	if opts.Progress != nil {
		img.progress = &progress{report: opts.Progress}
	}
	img.closers = append(img.closers, f.Close, unmap)
	return img, nil
}
