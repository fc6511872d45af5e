package image

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// Format names the kind of file an Image was built from.
type Format string

// Formats an Image can come from.
const (
	FormatBytes   Format = "bytes"
	FormatRaw     Format = "raw"
	FormatELFDump Format = "elf-dump"
	FormatMemFile Format = "mem-file"
)

// segment places length bytes of src, starting at offset off, at physical
// address phys. A nil src reads as zeros (ELF p_memsz beyond p_filesz).
type segment struct {
	phys, length uint64
	src          io.ReaderAt
	off          uint64
}

func (s segment) end() uint64 { return s.phys + s.length }

// Image is a physmem.Reader over a set of non-overlapping physical segments, with
// whatever CPU state the source carried. It is safe for concurrent use.
type Image struct {
	segs       []segment // sorted by phys, non-overlapping
	size       uint64
	format     Format
	compressed bool
	cpus       []CPUState
	vmcoreinfo string
	closers    []func() error
	progress   *progress // nil: no progress reports
}

// newImage sorts segs and rejects overlaps; zero-length segments are dropped.
func newImage(format Format, segs []segment) (*Image, error) {
	kept := segs[:0]
	for _, s := range segs {
		if s.length == 0 {
			continue
		}
		if s.phys+s.length < s.phys {
			return nil, fmt.Errorf("image: segment at %#x+%#x wraps the address space: %w", s.phys, s.length, ErrFormat)
		}
		kept = append(kept, s)
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].phys < kept[j].phys })
	var size uint64
	for i, s := range kept {
		if i > 0 && s.phys < kept[i-1].end() {
			return nil, fmt.Errorf("image: segments at %#x and %#x overlap: %w", kept[i-1].phys, s.phys, ErrFormat)
		}
		size = s.end()
	}
	return &Image{segs: kept, size: size, format: format}, nil
}

// Size is one past the highest readable physical address.
func (m *Image) Size() uint64 { return m.size }

// Format tells what the image was built from.
func (m *Image) Format() Format { return m.format }

// Compressed reports whether the file was zstd-compressed.
func (m *Image) Compressed() bool { return m.compressed }

// CPUs returns the per-CPU register state the source carried (ELF dumps);
// nil for raw images.
func (m *Image) CPUs() []CPUState { return append([]CPUState(nil), m.cpus...) }

// VMCoreInfo returns the guest's VMCOREINFO note text, or "" if absent.
func (m *Image) VMCoreInfo() string { return m.vmcoreinfo }

// Close releases mappings and files. Reads after Close are not allowed.
func (m *Image) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// ReadPhys implements physmem.Reader.
func (m *Image) ReadPhys(ranges []physmem.Range) error {
	failed := 0
	for i := range ranges {
		r := &ranges[i]
		r.Err = m.readOne(r.Addr, r.Buf)
		if m.progress != nil && len(r.Buf) >= progressMinRead {
			m.progress.reached(r.Addr+uint64(len(r.Buf)), m.size)
		}
		if r.Err != nil {
			failed++
		}
	}
	return batchError(failed, len(ranges))
}

// batchError is the ReadPhys result for failed of total ranges.
func batchError(failed, total int) error {
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("image: %d of %d ranges failed: %w", failed, total, physmem.ErrPartial)
}

func (m *Image) readOne(addr uint64, buf []byte) error {
	n := uint64(len(buf))
	if n == 0 {
		return nil
	}
	if addr+n < addr {
		return outOfRange(addr, n)
	}
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].end() > addr })
	done := uint64(0)
	for done < n {
		a := addr + done
		if i >= len(m.segs) || m.segs[i].phys > a {
			return outOfRange(addr, n)
		}
		s := m.segs[i]
		k := min(n-done, s.end()-a)
		dst := buf[done : done+k]
		if s.src == nil {
			clear(dst)
		} else if got, err := s.src.ReadAt(dst, int64(s.off+(a-s.phys))); uint64(got) != k {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("image: read %#x+%d: %w", addr, n, err)
		}
		done += k
		i++
	}
	return nil
}

func outOfRange(addr, n uint64) error {
	return fmt.Errorf("image: read %#x+%d: %w", addr, n, physmem.ErrOutOfRange)
}

// Extent is a range [Start, End) of guest-physical addresses that an image
// backs with memory.
type Extent struct{ Start, End uint64 }

// Extents returns the backed guest-physical ranges in address order, with
// adjacent segments merged: the guest's physical layout, holes excluded.
func (m *Image) Extents() []Extent {
	var out []Extent
	for _, s := range m.segs {
		if n := len(out); n > 0 && out[n-1].End == s.phys {
			out[n-1].End = s.end()
			continue
		}
		out = append(out, Extent{Start: s.phys, End: s.end()})
	}
	return out
}
