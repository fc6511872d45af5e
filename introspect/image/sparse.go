package image

import "sort"

// maxExtents bounds the data extents an image tracks; past it the rest of
// the file counts as data (read, not skipped), so memory stays bounded.
const maxExtents = 1 << 20

// extent is a run [off, end) of file bytes that may be non-zero; the rest of
// the file is holes that read as zeros.
type extent struct{ off, end uint64 }

// splitByExtents replaces every segment backed by the file whose data lies
// in exts (sorted, disjoint) by data segments and zero segments (nil src),
// so reads of a hole never touch the file or its mapping and scans skip it.
func splitByExtents(segs []segment, exts []extent) []segment {
	var out []segment
	for _, s := range segs {
		if s.src == nil {
			out = append(out, s)
			continue
		}
		pos := s.off
		end := s.off + s.length
		i := sort.Search(len(exts), func(i int) bool { return exts[i].end > pos })
		for ; pos < end; i++ {
			if i >= len(exts) || exts[i].off >= end {
				out = append(out, segment{phys: s.phys + (pos - s.off), length: end - pos})
				break
			}
			e := exts[i]
			if e.off > pos {
				out = append(out, segment{phys: s.phys + (pos - s.off), length: e.off - pos})
				pos = e.off
			}
			dend := min(e.end, end)
			out = append(out, segment{phys: s.phys + (pos - s.off), length: dend - pos, src: s.src, off: pos})
			pos = dend
		}
	}
	return out
}

// NextData implements physmem.Sparse: the first data segment at or after
// addr. Zero segments (holes, ELF zero tails) and unbacked gaps are skipped.
func (m *Image) NextData(addr uint64) (start, end uint64, ok bool) {
	i := sort.Search(len(m.segs), func(i int) bool { return m.segs[i].end() > addr })
	for ; i < len(m.segs); i++ {
		s := m.segs[i]
		if s.src == nil {
			continue
		}
		return max(addr, s.phys), s.end(), true
	}
	return 0, 0, false
}

// dataBytes is how many bytes of the image are backed by data, not holes.
func (m *Image) dataBytes() uint64 {
	var n uint64
	for _, s := range m.segs {
		if s.src != nil {
			n += s.length
		}
	}
	return n
}
