package fabric

// PhysRange is a backed range of guest-physical memory, [Start, End), page
// aligned. A VM's layout is a sorted list of non-overlapping PhysRanges;
// the gaps between them are holes (MMIO, reserved) that have no content.
type PhysRange struct{ Start, End uint64 }

// Contains reports whether gpa lies in the range.
func (r PhysRange) Contains(gpa uint64) bool { return gpa >= r.Start && gpa < r.End }

// Pages is the number of whole pages in the range.
func (r PhysRange) Pages() uint64 {
	if r.End <= r.Start {
		return 0
	}
	return (r.End - r.Start) >> PageShift
}
