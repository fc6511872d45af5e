package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// ELF constants of the QEMU dump-guest-memory core format (ELF64, little endian).
const (
	elfHeaderSize  = 64
	elfPhdrSize    = 56
	elfShdrSize    = 64
	elfClass64     = 2
	elfDataLSB     = 1
	elfTypeCore    = 4
	elfMachX86_64  = 62
	elfMach386     = 3
	elfPNXNum      = 0xffff // e_phnum overflow: the count is in section 0's sh_info
	ptLoad         = 1
	ptNote         = 4
	ntPRStatus     = 1
	maxNoteBytes   = 64 << 20
	maxPhdrs       = 1 << 20
	maxPhysAddr    = 1 << 52 // x86-64's architectural physical address limit
	vmcoreInfoName = "VMCOREINFO"
)

var le = binary.LittleEndian

// ParseDump reads a QEMU dump-guest-memory ELF core (paging=false) of size
// bytes from src. PT_LOAD segments are placed at their p_paddr (the guest
// physical address); gaps between them read as physmem.ErrOutOfRange. src must stay
// readable while the Image is used.
func ParseDump(src io.ReaderAt, size int64) (*Image, error) { return parseDump(src, size, nil) }

// parseDump is ParseDump for a file whose data lies in exts (nil: all of it):
// segment bytes in holes read as zeros without touching src.
func parseDump(src io.ReaderAt, size int64, exts []extent) (*Image, error) {
	if size < elfHeaderSize {
		return nil, fmt.Errorf("image: elf dump: %d bytes, shorter than the header: %w", size, ErrFormat)
	}
	h := make([]byte, elfHeaderSize)
	if _, err := src.ReadAt(h, 0); err != nil {
		return nil, fmt.Errorf("image: elf dump: read header: %w", err)
	}
	switch {
	case !bytes.Equal(h[:4], elfMagic):
		return nil, fmt.Errorf("image: elf dump: no ELF magic: %w", ErrFormat)
	case h[4] != elfClass64 || h[5] != elfDataLSB:
		return nil, fmt.Errorf("image: elf dump: not ELF64 little-endian (class %d, data %d): %w", h[4], h[5], ErrFormat)
	case le.Uint16(h[16:]) != elfTypeCore:
		return nil, fmt.Errorf("image: elf dump: type %d is not a core file: %w", le.Uint16(h[16:]), ErrFormat)
	case le.Uint16(h[18:]) != elfMachX86_64 && le.Uint16(h[18:]) != elfMach386:
		return nil, fmt.Errorf("image: elf dump: machine %d is not x86: %w", le.Uint16(h[18:]), ErrFormat)
	}
	// QEMU marks the dump EM_386 when the vCPU was not in long mode (firmware,
	// early boot); its NT_PRSTATUS notes then have the 32-bit layout, so only
	// the QEMU notes (same layout in both modes) are read.
	notes := notes{prstatus64: le.Uint16(h[18:]) == elfMachX86_64}
	phoff, phentsize := le.Uint64(h[32:]), uint64(le.Uint16(h[54:]))
	phnum := uint64(le.Uint16(h[56:]))
	if phentsize < elfPhdrSize {
		return nil, fmt.Errorf("image: elf dump: program header size %d < %d: %w", phentsize, elfPhdrSize, ErrFormat)
	}
	if phnum == elfPNXNum {
		n, err := extendedPhnum(src, size, h)
		if err != nil {
			return nil, err
		}
		phnum = n
	}
	if phnum > maxPhdrs || phoff > uint64(size) || phnum*phentsize > uint64(size)-phoff {
		return nil, fmt.Errorf("image: elf dump: %d program headers at %#x exceed the file: %w", phnum, phoff, ErrFormat)
	}
	table := make([]byte, phnum*phentsize)
	if _, err := src.ReadAt(table, int64(phoff)); err != nil {
		return nil, fmt.Errorf("image: elf dump: read program headers: %w", err)
	}
	var segs []segment
	for i := uint64(0); i < phnum; i++ {
		p := table[i*phentsize:]
		typ, off, paddr := le.Uint32(p), le.Uint64(p[8:]), le.Uint64(p[24:])
		filesz, memsz := le.Uint64(p[32:]), le.Uint64(p[40:])
		if off > uint64(size) || filesz > uint64(size)-off {
			return nil, fmt.Errorf("image: elf dump: segment %d (%#x+%#x) beyond the file end %#x: %w", i, off, filesz, size, ErrFormat)
		}
		switch typ {
		case ptLoad:
			if filesz > memsz {
				return nil, fmt.Errorf("image: elf dump: segment %d file size %#x > memory size %#x: %w", i, filesz, memsz, ErrFormat)
			}
			if paddr > maxPhysAddr || memsz > maxPhysAddr-paddr {
				return nil, fmt.Errorf("image: elf dump: segment %d (%#x+%#x) ends beyond the 52-bit physical address space: %w", i, paddr, memsz, ErrFormat)
			}
			segs = append(segs, segment{phys: paddr, length: filesz, src: src, off: off})
			if memsz > filesz {
				segs = append(segs, segment{phys: paddr + filesz, length: memsz - filesz})
			}
		case ptNote:
			if filesz > maxNoteBytes {
				return nil, fmt.Errorf("image: elf dump: note segment %d of %d bytes too large: %w", i, filesz, ErrFormat)
			}
			buf := make([]byte, filesz)
			if _, err := src.ReadAt(buf, int64(off)); err != nil {
				return nil, fmt.Errorf("image: elf dump: read notes: %w", err)
			}
			if err := notes.parse(buf); err != nil {
				return nil, err
			}
		}
	}
	if exts != nil {
		segs = splitByExtents(segs, exts)
	}
	img, err := newImage(FormatELFDump, segs)
	if err != nil {
		return nil, fmt.Errorf("image: elf dump: %w", err)
	}
	if len(img.segs) == 0 {
		return nil, fmt.Errorf("image: elf dump: no memory (no PT_LOAD segment with bytes): %w", ErrFormat)
	}
	img.cpus = notes.cpus()
	img.vmcoreinfo = notes.vmcoreinfo
	return img, nil
}

// NewDumpBytes parses an ELF dump held in memory.
func NewDumpBytes(b []byte) (*Image, error) { return ParseDump(memory(b), int64(len(b))) }

// extendedPhnum reads the real program header count from section 0's sh_info.
func extendedPhnum(src io.ReaderAt, size int64, h []byte) (uint64, error) {
	shoff := le.Uint64(h[40:])
	if le.Uint16(h[58:]) < elfShdrSize || shoff > uint64(size) || uint64(size)-shoff < elfShdrSize {
		return 0, fmt.Errorf("image: elf dump: PN_XNUM without a section header 0: %w", ErrFormat)
	}
	sh := make([]byte, elfShdrSize)
	if _, err := src.ReadAt(sh, int64(shoff)); err != nil {
		return 0, fmt.Errorf("image: elf dump: read section header 0: %w", err)
	}
	return uint64(le.Uint32(sh[44:])), nil
}

// notes collects per-CPU notes in file order: QEMU writes every CPU's
// NT_PRSTATUS, then every CPU's QEMU note, so the i-th of each belong together.
type notes struct {
	prstatus64 bool // NT_PRSTATUS notes have the x86-64 layout
	prstatus   [][]byte
	qemu       [][]byte
	vmcoreinfo string
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

func (ns *notes) parse(b []byte) error {
	for len(b) > 0 {
		if len(b) < 12 {
			return fmt.Errorf("image: elf dump: %d trailing bytes in a note segment: %w", len(b), ErrFormat)
		}
		namesz, descsz, typ := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		rest := uint64(len(b) - 12)
		// The final desc of a segment may lack its padding.
		if align4(namesz) > rest || descsz > rest-align4(namesz) {
			return fmt.Errorf("image: elf dump: note (name %d, desc %d bytes) overruns its segment: %w", namesz, descsz, ErrFormat)
		}
		name := string(bytes.TrimRight(b[12:12+namesz], "\x00"))
		descOff := 12 + align4(namesz)
		desc := b[descOff : descOff+descsz]
		switch {
		case name == "CORE" && typ == ntPRStatus && ns.prstatus64:
			if len(desc) < prstatusMinSize {
				return fmt.Errorf("image: elf dump: NT_PRSTATUS of %d bytes < %d: %w", len(desc), prstatusMinSize, ErrFormat)
			}
			ns.prstatus = append(ns.prstatus, desc)
		case name == "QEMU" && typ == 0:
			if len(desc) < qemuNoteMinSize || le.Uint32(desc) == 0 {
				return fmt.Errorf("image: elf dump: QEMU cpu note of %d bytes (version %d) unusable: %w", len(desc), le.Uint32(desc), ErrFormat)
			}
			ns.qemu = append(ns.qemu, desc)
		case name == vmcoreInfoName:
			ns.vmcoreinfo = string(bytes.TrimRight(desc, "\x00"))
		}
		b = b[min(descOff+align4(descsz), uint64(len(b))):]
	}
	return nil
}

func (ns *notes) cpus() []CPUState {
	n := max(len(ns.prstatus), len(ns.qemu))
	if n == 0 {
		return nil
	}
	out := make([]CPUState, n)
	for i := range out {
		out[i].Index = i
		if i < len(ns.prstatus) {
			parsePRStatus(ns.prstatus[i], &out[i])
		}
		if i < len(ns.qemu) {
			parseQEMUNote(ns.qemu[i], &out[i])
		}
	}
	return out
}
