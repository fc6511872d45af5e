package fabric

import (
	"fmt"
	"slices"
)

// normalizeLayout checks that no range is empty,
// sorts them and merges ranges that touch or overlap, so a read that crosses
// from one into the next is one backed span.
func normalizeLayout(layout []PhysRange) ([]PhysRange, error) {
	if len(layout) == 0 {
		return nil, fmt.Errorf("layout: no backed ranges: %w", ErrBadLayout)
	}
	out := slices.Clone(layout)
	for _, r := range out {
		if r.End <= r.Start {
			return nil, fmt.Errorf("layout: range [%#x, %#x) is empty: %w", r.Start, r.End, ErrBadLayout)
		}
	}
	slices.SortFunc(out, func(a, b PhysRange) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	merged := out[:1]
	for _, r := range out[1:] {
		last := &merged[len(merged)-1]
		if r.Start <= last.End {
			last.End = max(last.End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	return merged, nil
}

// layoutCovers reports whether [addr, addr+n) lies inside one range of a
// normalized layout (n > 0). The search is binary: layouts are short, but
// introspection asks millions of times.
func layoutCovers(layout []PhysRange, addr, n uint64) bool {
	end := addr + n
	if end < addr {
		return false
	}
	i, _ := slices.BinarySearchFunc(layout, addr, func(r PhysRange, a uint64) int {
		switch {
		case r.End <= a:
			return -1
		case r.Start > a:
			return 1
		}
		return 0
	})
	return i < len(layout) && layout[i].Start <= addr && end <= layout[i].End
}
