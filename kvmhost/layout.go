package kvmhost

import (
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
)

// ImageLayout turns an image's extents into a runtime layout: whole pages
// only (a partly backed page has no content to split), sorted, touching
// ranges merged.
func ImageLayout(extents []image.Extent) []fabric.PhysRange {
	const mask = fabric.PageSize - 1
	var out []fabric.PhysRange
	for _, e := range extents {
		start, end := (e.Start+mask)&^mask, e.End&^mask
		if start < e.Start || end <= start { // wrapped, or not one whole page
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == start {
			out[n-1].End = end
			continue
		}
		out = append(out, fabric.PhysRange{Start: start, End: end})
	}
	return out
}

// FreeGFNs are the frames of layout that the guest kernel t's buddy
// allocator holds free: the pages a workload may write (WritableGFNs)
// without changing anything an IDS reads about the kernel.
func FreeGFNs(t linux.Target, layout []fabric.PhysRange) ([]fabric.GFN, error) {
	if len(layout) == 0 {
		return nil, fmt.Errorf("free pages: empty layout: %w", ErrConfig)
	}
	pfns, err := linux.FreePages(t, layout[len(layout)-1].End>>fabric.PageShift)
	if err != nil {
		return nil, fmt.Errorf("free pages: %w", err)
	}
	out := make([]fabric.GFN, 0, len(pfns))
	i := 0
	for _, p := range pfns { // both ascending
		g := fabric.GFN(p)
		for i < len(layout) && layout[i].End <= g.Addr() {
			i++
		}
		if i < len(layout) && layout[i].Start <= g.Addr() {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("free pages: the guest kernel holds no free page in the layout")
	}
	return out, nil
}
