package image

import (
	"encoding/binary"

	"github.com/vmemtrans/vmemtrans/introspect/paging"
)

// CPUState is one vCPU's registers as a dump records them. General registers
// come from the NT_PRSTATUS note; control registers only from QEMU's own
// "QEMU" note (HasControl).
type CPUState struct {
	Index int // position of the CPU in the dump, from 0

	RIP, RSP, RFlags   uint64
	FSBase, GSBase     uint64
	KernelGSBase       uint64 // only when the QEMU note is large enough
	CR0, CR2, CR3, CR4 uint64
	HasGeneral         bool // an NT_PRSTATUS note was found
	HasControl         bool // a QEMU note was found: CR0..CR4 are valid
}

// LA57 reports whether the CPU runs with 5-level paging.
func (c CPUState) LA57() bool { return c.CR4&paging.CR4LA57 != 0 }

// Layout of x86_64_elf_prstatus as QEMU writes it (target/i386/arch_dump.c):
// pr_reg starts at 112, user_regs_struct order r15, r14, ..., gs.
const (
	prstatusRegsOff = 112
	prstatusMinSize = prstatusRegsOff + 27*8
	regRIP          = 16
	regEFlags       = 18
	regRSP          = 19
	regFSBase       = 21
	regGSBase       = 22
)

func parsePRStatus(desc []byte, c *CPUState) {
	reg := func(i int) uint64 { return binary.LittleEndian.Uint64(desc[prstatusRegsOff+8*i:]) }
	c.RIP, c.RFlags, c.RSP = reg(regRIP), reg(regEFlags), reg(regRSP)
	c.FSBase, c.GSBase = reg(regFSBase), reg(regGSBase)
	c.HasGeneral = true
}

// Layout of QEMUCPUState (target/i386/arch_dump.c): version, size (u32 each),
// rax..r15, rip, rflags (18 u64 from 8), ten 24-byte segment descriptors
// (from 152), cr[5] (from 392), then optionally kernel_gs_base (at 432).
const (
	qemuNoteRegsOff     = 8
	qemuNoteCROff       = 392
	qemuNoteMinSize     = qemuNoteCROff + 5*8
	qemuNoteKGSBaseOff  = qemuNoteMinSize
	qemuNoteWithKGSBase = qemuNoteKGSBaseOff + 8
)

func parseQEMUNote(desc []byte, c *CPUState) {
	u := func(off int) uint64 { return binary.LittleEndian.Uint64(desc[off:]) }
	declared := int(binary.LittleEndian.Uint32(desc[4:]))
	c.CR0, c.CR2, c.CR3, c.CR4 = u(qemuNoteCROff), u(qemuNoteCROff+16), u(qemuNoteCROff+24), u(qemuNoteCROff+32)
	if !c.HasGeneral {
		c.RSP, c.RIP, c.RFlags = u(qemuNoteRegsOff+6*8), u(qemuNoteRegsOff+16*8), u(qemuNoteRegsOff+17*8)
	}
	if declared >= qemuNoteWithKGSBase && len(desc) >= qemuNoteWithKGSBase {
		c.KernelGSBase = u(qemuNoteKGSBaseOff)
	}
	c.HasControl = true
}
