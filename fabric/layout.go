package fabric

// PhysRange is one backed guest-physical range [Start, End), page aligned.
// A VM's layout is a sorted list of non-overlapping ranges; the holes between
// them (MMIO, the PCI hole) are not guest RAM and have no pages.
type PhysRange struct{ Start, End uint64 }
