package image

import "fmt"

// Mapping places Size bytes of a guest RAM file, from file offset FileOff,
// at guest physical address Phys.
type Mapping struct {
	Phys, FileOff, Size uint64
}

// Layout is how a machine type lays guest RAM out in physical space.
type Layout []Mapping

// fourGiB is where RAM that does not fit below the PCI hole resumes.
const fourGiB = 1 << 32

// PCLayout is the layout of QEMU's i440fx "pc" machine (hw/i386/pc_piix.c)
// for ramSize bytes of RAM and the default max-ram-below-4g. RAM below
// 3.5 GiB sits at physical 0 whole, so file offset = physical address. From
// 3.5 GiB up, QEMU cuts RAM at 3 GiB (gigabyte-aligned) to leave room for the
// PCI hole: file [0, 3G) maps to physical [0, 3G) and file [3G, ramSize) to
// physical [4G, 4G+ramSize-3G). Physical [3G, 4G) is then not RAM.
func PCLayout(ramSize uint64) Layout {
	const traditional, aligned = 0xe000_0000, 0xc000_0000
	if ramSize < traditional {
		return Layout{{Phys: 0, FileOff: 0, Size: ramSize}}
	}
	return splitLayout(ramSize, aligned)
}

// Q35Layout is the layout of QEMU's "q35" machine (hw/i386/pc_q35.c): from
// 2.75 GiB of RAM up the cut is at 2 GiB, below it all RAM sits at 0.
func Q35Layout(ramSize uint64) Layout {
	const threshold, low = 0xb000_0000, 0x8000_0000
	if ramSize < threshold {
		return Layout{{Phys: 0, FileOff: 0, Size: ramSize}}
	}
	return splitLayout(ramSize, low)
}

// SplitLayout puts the first below4G bytes of RAM at physical 0 and the rest
// at 4 GiB, as QEMU's max-ram-below-4g option does.
func SplitLayout(ramSize, below4G uint64) Layout {
	if ramSize <= below4G {
		return Layout{{Phys: 0, FileOff: 0, Size: ramSize}}
	}
	return splitLayout(ramSize, below4G)
}

func splitLayout(ramSize, low uint64) Layout {
	return Layout{
		{Phys: 0, FileOff: 0, Size: low},
		{Phys: fourGiB, FileOff: low, Size: ramSize - low},
	}
}

// RAMSize is the number of file bytes the layout maps.
func (l Layout) RAMSize() uint64 {
	var n uint64
	for _, m := range l {
		n += m.Size
	}
	return n
}

func (l Layout) segments(src readerAt, fileSize uint64) ([]segment, error) {
	segs := make([]segment, 0, len(l))
	for _, m := range l {
		if m.FileOff+m.Size < m.FileOff || m.FileOff+m.Size > fileSize {
			return nil, fmt.Errorf("image: layout maps file %#x+%#x beyond the file size %#x: %w", m.FileOff, m.Size, fileSize, ErrFormat)
		}
		segs = append(segs, segment{phys: m.Phys, length: m.Size, src: src, off: m.FileOff})
	}
	return segs, nil
}
