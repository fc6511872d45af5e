package agent

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// PageToucher makes the guest itself read guest-physical pages, so that a
// page held elsewhere is paged in by the VMM's own fault path.
type PageToucher interface {
	// Touch reads each frame of gfns; errs[i] is the result for gfns[i]
	// (nil, or an error wrapping ErrNotRAM, ErrTouch or ErrUnavailable).
	// Once ctx ends, the frames not yet touched fail with its error.
	Touch(ctx context.Context, gfns []fabric.GFN, errs []error)
}

// KcorePath is where the guest kernel exposes its memory as an ELF core.
const KcorePath = "/proc/kcore"

// kernelTextBase is where x86-64 maps the kernel image: a kcore segment
// there (KCORE_TEXT) has a physical address too, but it is not the direct
// map of RAM.
const kernelTextBase = 0xffffffff80000000

// ramSegment is one RAM segment of kcore: guest-physical [start, end) at
// file offset off.
type ramSegment struct{ start, end, off uint64 }

// Kcore touches pages by reading them through /proc/kcore (or any ELF core
// whose PT_LOAD segments carry physical addresses the same way).
type Kcore struct {
	r    io.ReaderAt
	c    io.Closer
	segs []ramSegment
}

var _ PageToucher = (*Kcore)(nil)

// NewKcore parses the program headers of the ELF core r and keeps its RAM
// segments: PT_LOAD with a physical address, outside the kernel-text
// mapping. Closing the Kcore closes r if it is an io.Closer.
func NewKcore(r io.ReaderAt) (*Kcore, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("kcore: %w: %w", ErrUnavailable, err)
	}
	k := &Kcore{r: r}
	if c, ok := r.(io.Closer); ok {
		k.c = c
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Paddr == ^uint64(0) || p.Vaddr >= kernelTextBase || p.Memsz == 0 {
			continue
		}
		end := p.Paddr + p.Memsz
		if end < p.Paddr || p.Off+p.Memsz < p.Off {
			continue // wraps: not a segment a kernel writes
		}
		k.segs = append(k.segs, ramSegment{start: p.Paddr, end: end, off: p.Off})
	}
	if len(k.segs) == 0 {
		return nil, fmt.Errorf("kcore: no ram segment: %w", ErrUnavailable)
	}
	slices.SortFunc(k.segs, func(a, b ramSegment) int {
		if a.start < b.start {
			return -1
		}
		if a.start > b.start {
			return 1
		}
		return 0
	})
	return k, nil
}

// RAM is the guest-physical ranges kcore maps, sorted.
func (k *Kcore) RAM() []fabric.PhysRange {
	out := make([]fabric.PhysRange, len(k.segs))
	for i, s := range k.segs {
		out[i] = fabric.PhysRange{Start: s.start, End: s.end}
	}
	return out
}

// Offset is the file offset of frame g's first byte, if a RAM segment holds it.
func (k *Kcore) Offset(g fabric.GFN) (uint64, bool) {
	if uint64(g) > ^uint64(0)>>fabric.PageShift {
		return 0, false
	}
	a := g.Addr()
	i, _ := slices.BinarySearchFunc(k.segs, a, func(s ramSegment, a uint64) int {
		if s.end <= a {
			return -1
		}
		if s.start > a {
			return 1
		}
		return 0
	})
	if i == len(k.segs) || a < k.segs[i].start || a >= k.segs[i].end {
		return 0, false
	}
	s := k.segs[i]
	return s.off + (a - s.start), true
}

// Touch reads one word of each frame through the guest kernel's mapping.
func (k *Kcore) Touch(ctx context.Context, gfns []fabric.GFN, errs []error) {
	var word [8]byte
	for i, g := range gfns {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(gfns); j++ {
				errs[j] = fmt.Errorf("gfn %#x: %w", uint64(gfns[j]), err)
			}
			return
		}
		off, ok := k.Offset(g)
		if !ok {
			errs[i] = fmt.Errorf("gfn %#x: in no ram segment of kcore: %w", uint64(g), ErrNotRAM)
			continue
		}
		if _, err := k.r.ReadAt(word[:], int64(off)); err != nil && !errors.Is(err, io.EOF) {
			errs[i] = fmt.Errorf("gfn %#x: read kcore at %#x: %w: %w", uint64(g), off, ErrTouch, err)
			continue
		}
		errs[i] = nil
	}
}

// Close closes the underlying file.
func (k *Kcore) Close() error {
	if k.c == nil {
		return nil
	}
	return k.c.Close()
}
