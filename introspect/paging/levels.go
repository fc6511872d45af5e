package paging

// Page sizes a walk can end in.
const (
	PageSize4K = 1 << 12
	PageSize2M = 1 << 21
	PageSize1G = 1 << 30
)

// Mode is the number of paging levels.
type Mode int

// The two long-mode paging modes.
const (
	FourLevel Mode = 4
	FiveLevel Mode = 5
)

// CR4LA57 is the CR4 bit that selects five-level paging.
const CR4LA57 = 1 << 12

// ModeFromCR4 returns the paging mode CR4 selects.
func ModeFromCR4(cr4 uint64) Mode {
	if cr4&CR4LA57 != 0 {
		return FiveLevel
	}
	return FourLevel
}

func (m Mode) String() string {
	switch m {
	case FourLevel:
		return "4-level"
	case FiveLevel:
		return "5-level"
	}
	return "invalid"
}

// level is one step of the walk: the VA bits above shift index its table;
// large says a PS entry here maps a page of 1<<shift bytes.
type level struct {
	name  string
	shift uint
	large bool
}

var (
	levels4 = []level{{"PML4", 39, false}, {"PDPT", 30, true}, {"PD", 21, true}, {"PT", 12, false}}
	levels5 = append([]level{{"PML5", 48, false}}, levels4...)
)

func (m Mode) levels() []level {
	if m == FiveLevel {
		return levels5
	}
	return levels4
}

// vaBits is the number of significant virtual-address bits in the mode.
func (m Mode) vaBits() uint {
	if m == FiveLevel {
		return 57
	}
	return 48
}

// Canonical reports whether va is canonical in the mode: every bit above the
// highest translated one equals it.
func (m Mode) Canonical(va uint64) bool {
	shift := m.vaBits() - 1
	top := va >> shift
	return top == 0 || top == (^uint64(0))>>shift
}

// Entry bits the walker looks at.
const (
	entryPresent = 1 << 0
	entryLarge   = 1 << 7
	// addrMask keeps bits 12..51: the next table or 4 KiB frame; NX (63),
	// protection keys and software bits are dropped.
	addrMask = 0x000f_ffff_ffff_f000
)

// frameMask keeps the physical frame of a page of 1<<shift bytes.
func frameMask(shift uint) uint64 { return addrMask &^ (1<<shift - 1) }

// TableBase is the top-level table's physical address in cr3.
func TableBase(cr3 uint64) uint64 { return cr3 & addrMask }

// PTIUserBit is the CR3 bit Linux's page-table isolation sets while user
// mode runs on the user copy of the PGD.
const PTIUserBit = 1 << 12

// KernelCR3 drops PCID and the PTI user bit (mask ~0x1fff): the CR3 of the
// kernel's own page tables when PTI is on, whatever mode the vCPU was
// stopped in. Without PTI (CPUs not affected by Meltdown, AMD's among them,
// or pti=off) the PGD is any 4 KiB frame and bit 12 is an address bit:
// see KernelCR3Candidates.
func KernelCR3(cr3 uint64) uint64 { return TableBase(cr3) &^ PTIUserBit }

// KernelCR3Candidates are the tables that may be the kernel's for a raw
// cr3, most likely first: the kernel PGD under PTI (bit 12 cleared), then
// the table base as it is (no PTI). A register read cannot tell the two
// apart; a walk that finds the kernel can.
func KernelCR3Candidates(cr3 uint64) []uint64 {
	k, t := KernelCR3(cr3), TableBase(cr3)
	if k == t {
		return []uint64{t}
	}
	return []uint64{k, t}
}
