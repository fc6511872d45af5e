package scan

import (
	"errors"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// lender scans memory a physmem.Lender shows in place: no batch buffer, no
// copy. Segments need not be contiguous in memory, so a match straddling two
// of them is looked for in a small stitch of the last keep bytes of one and
// the first keep bytes of the next.
type lender struct {
	*scanner
	stitch []byte
	saved  lendState
	// progress reports come every progressStep bytes of address space
	nextProgress uint64
	total        uint64
	// zeroFree: no pattern holds a zero byte, so none matches in or
	// across a run of zeros, which is then skipped unread.
	zeroFree bool
	// zeroPattern: some pattern is all zeros, so it matches anywhere in
	// a run of zeros, which is then searched whole.
	zeroPattern bool
}

// zeros stands in for a Zero segment when a pattern could match in it.
var zeros = make([]byte, 64<<10)

const progressStep = 16 << 20

// lendState is what a segment's visit changes, kept to undo it when the
// segment is shown again (Retry).
type lendState struct {
	matches, unreadable int
	lastUnreadable      Unreadable
	tail                []byte
	tailEnd             uint64
	bytesRead           uint64
}

func (s *lender) save() {
	st := &s.saved
	st.matches, st.unreadable = len(s.res.Matches), len(s.res.Unreadable)
	if st.unreadable > 0 {
		st.lastUnreadable = s.res.Unreadable[st.unreadable-1]
	}
	st.tail = append(st.tail[:0], s.tail()...)
	st.tailEnd, st.bytesRead = s.tailEnd, s.res.BytesRead
}

func (s *lender) restore() {
	st := &s.saved
	s.res.Matches = s.res.Matches[:st.matches]
	s.res.Unreadable = s.res.Unreadable[:st.unreadable]
	if st.unreadable > 0 {
		s.res.Unreadable[st.unreadable-1] = st.lastUnreadable
	}
	s.setTail(st.tail)
	s.tailEnd, s.res.BytesRead = st.tailEnd, st.bytesRead
}

// tail is the last bytes seen, up to keep, ending at tailEnd.
func (s *lender) tail() []byte { return s.buf[s.keep-s.tailLen : s.keep] }

func (s *lender) setTail(t []byte) {
	s.tailLen = len(t)
	copy(s.buf[s.keep-len(t):s.keep], t)
}

// scanRange lends [start, end) and scans it; false stops the scan.
func (s *lender) scanRange(l physmem.Lender, start, end uint64) bool {
	more := true
	err := l.LendPhys(start, end-start, func(seg physmem.Segment) bool {
		if seg.Retry {
			s.restore()
		} else {
			s.save()
		}
		if seg.Err != nil {
			if !errors.Is(seg.Err, physmem.ErrOutOfRange) {
				for a := seg.Addr &^ (pageSize - 1); a < seg.Addr+seg.Len; a += pageSize {
					s.unreadable(a, seg.Err)
				}
			}
			s.tailLen = 0
			return true
		}
		switch {
		case seg.Zero && s.zeroFree:
			s.tailLen = 0
		case seg.Zero && !s.zeroPattern && seg.Len > 2*uint64(s.keep):
			// A pattern with a non-zero byte meets a run of zeros only
			// within keep bytes of its ends.
			k := uint64(s.keep)
			more = s.segment(seg.Addr, zeros[:k]) && s.segment(seg.Addr+seg.Len-k, zeros[:k])
		case seg.Zero:
			for off := uint64(0); off < seg.Len && more; off += uint64(len(zeros)) {
				more = s.segment(seg.Addr+off, zeros[:min(seg.Len-off, uint64(len(zeros)))])
			}
		default:
			more = s.segment(seg.Addr, seg.Data)
		}
		if s.opt.Progress != nil && seg.Addr+seg.Len >= s.nextProgress {
			s.nextProgress = seg.Addr + seg.Len + progressStep
			s.opt.Progress(seg.Addr+seg.Len, s.total)
		}
		return more
	})
	if err != nil && !errors.Is(err, physmem.ErrPartial) {
		// The lender failed as a whole: what it did not show is unreadable.
		s.unreadable(start, err)
	}
	return more
}

// segment scans data, at addr, and its stitch with the bytes before it;
// false once the match limit is reached.
func (s *lender) segment(addr uint64, data []byte) bool {
	if s.tailEnd != addr {
		s.tailLen = 0
	}
	s.res.BytesRead += uint64(len(data))
	if s.tailLen > 0 {
		tail := s.tail()
		s.stitch = append(append(s.stitch[:0], tail...), data[:min(s.keep, len(data))]...)
		if !s.find(s.stitch, addr-uint64(len(tail)), len(tail), true) {
			return false
		}
	}
	if !s.find(data, addr, 0, false) {
		return false
	}
	if len(data) >= s.keep {
		s.setTail(data[len(data)-s.keep:])
	} else {
		s.stitch = append(append(s.stitch[:0], s.tail()...), data...)
		s.setTail(s.stitch[max(0, len(s.stitch)-s.keep):])
	}
	s.tailEnd = addr + uint64(len(data))
	return true
}
