package imagetest

import (
	"encoding/binary"
)

// DumpSegment is one PT_LOAD of a synthetic dump: Data at physical Phys.
type DumpSegment struct {
	Phys uint64
	Data []byte
}

// DumpCPU is the register state written for one vCPU.
type DumpCPU struct {
	RIP, RSP, GSBase, KernelGSBase uint64
	CR0, CR2, CR3, CR4             uint64
}

// DumpSpec describes a synthetic QEMU ELF dump.
type DumpSpec struct {
	Segments   []DumpSegment
	CPUs       []DumpCPU
	VMCoreInfo string // written as a VMCOREINFO note when not empty
	// OmitQEMUNotes leaves out the "QEMU" CPU notes (control registers), as
	// dumps from other producers do.
	OmitQEMUNotes bool
}

var le = binary.LittleEndian

// pageSize is the guest page size dump segments are aligned to.
const pageSize = 4096

// Sizes and offsets of the structures QEMU writes (target/i386/arch_dump.c).
const (
	prstatusSize     = 336
	prstatusPIDOff   = 32
	prstatusRegsOff  = 112
	qemuCPUStateSize = 440
	qemuCROff        = 392
	qemuKGSBaseOff   = 432
)

// SplitContent cuts content into parts PT_LOAD segments at page-aligned
// points, contiguous from physical 0.
func SplitContent(content []byte, parts int) []DumpSegment {
	segs := make([]DumpSegment, 0, parts)
	var start int
	for i := 1; i <= parts; i++ {
		end := len(content) * i / parts
		if i < parts {
			end &^= pageSize - 1
		}
		if end < start {
			end = start
		}
		segs = append(segs, DumpSegment{Phys: uint64(start), Data: content[start:end]})
		start = end
	}
	return segs
}

// BuildDump returns the bytes of an ELF64 core as QEMU's dump-guest-memory
// (paging=false) writes it: one PT_NOTE with every CPU's NT_PRSTATUS, then
// every CPU's QEMU note, then VMCOREINFO; one PT_LOAD per segment with
// p_paddr = p_vaddr = the physical address.
func BuildDump(spec DumpSpec) []byte {
	var notes []byte
	for i, c := range spec.CPUs {
		d := make([]byte, prstatusSize)
		le.PutUint32(d[prstatusPIDOff:], uint32(i+1))
		reg := func(idx int, v uint64) { le.PutUint64(d[prstatusRegsOff+8*idx:], v) }
		reg(16, c.RIP)
		reg(19, c.RSP)
		reg(22, c.GSBase)
		notes = appendNote(notes, "CORE", 1, d)
	}
	if !spec.OmitQEMUNotes {
		for _, c := range spec.CPUs {
			d := make([]byte, qemuCPUStateSize)
			le.PutUint32(d, 1)
			le.PutUint32(d[4:], qemuCPUStateSize)
			le.PutUint64(d[8+6*8:], c.RSP)
			le.PutUint64(d[8+16*8:], c.RIP)
			for i, v := range []uint64{c.CR0, 0, c.CR2, c.CR3, c.CR4} {
				le.PutUint64(d[qemuCROff+8*i:], v)
			}
			le.PutUint64(d[qemuKGSBaseOff:], c.KernelGSBase)
			notes = appendNote(notes, "QEMU", 0, d)
		}
	}
	if spec.VMCoreInfo != "" {
		notes = appendNote(notes, "VMCOREINFO", 0, []byte(spec.VMCoreInfo))
	}

	phnum := 1 + len(spec.Segments)
	out := make([]byte, 64+56*phnum)
	copy(out, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(out[16:], 4)  // ET_CORE
	le.PutUint16(out[18:], 62) // EM_X86_64
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[32:], 64) // e_phoff
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], uint16(phnum))

	phdr := func(i int, typ uint32, off, paddr, size uint64) {
		p := out[64+56*i:]
		le.PutUint32(p, typ)
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], paddr)
		le.PutUint64(p[24:], paddr)
		le.PutUint64(p[32:], size)
		le.PutUint64(p[40:], size)
	}
	phdr(0, 4, uint64(len(out)), 0, uint64(len(notes)))
	out = append(out, notes...)
	for i, s := range spec.Segments {
		for len(out)%pageSize != 0 {
			out = append(out, 0)
		}
		phdr(1+i, 1, uint64(len(out)), s.Phys, uint64(len(s.Data)))
		out = append(out, s.Data...)
	}
	return out
}

func appendNote(b []byte, name string, typ uint32, desc []byte) []byte {
	var h [12]byte
	le.PutUint32(h[:], uint32(len(name)+1))
	le.PutUint32(h[4:], uint32(len(desc)))
	le.PutUint32(h[8:], typ)
	b = append(b, h[:]...)
	b = append(b, name...)
	b = append(b, 0)
	b = pad4(b)
	b = append(b, desc...)
	return pad4(b)
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
