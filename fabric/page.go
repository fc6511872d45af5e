package fabric

// PageShift is log2 of the guest page size.
const PageShift = 12

// PageSize is the size of a guest page and of a sub-host slot.
const PageSize = 1 << PageShift

// GFN is a guest frame number: a guest physical address shifted right by PageShift.
type GFN uint64

// GFNOf returns the frame that holds guest physical address gpa.
func GFNOf(gpa uint64) GFN { return GFN(gpa >> PageShift) }

// Addr returns the guest physical address of the first byte of the frame.
func (g GFN) Addr() uint64 { return uint64(g) << PageShift }
