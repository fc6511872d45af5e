package scan

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

const pageSize = 4096

// DefaultBatchPages is how many pages one ReadPhys asks for: 16 MiB, large
// enough that a remote reader's round trips vanish in the transfer, small
// enough not to hold a guest's RAM twice.
const DefaultBatchPages = 4096

// ErrIncomplete reports a scan that could not read some memory.
var ErrIncomplete = errors.New("scan incomplete: memory unreadable")

// Options tune a scan.
type Options struct {
	// BatchPages is the number of pages per ReadPhys (0: DefaultBatchPages).
	BatchPages int
	// Limit stops the scan after this many matches (0: no limit).
	Limit int
	// Progress, when set, is called after each batch with the bytes of the
	// address space done and the total.
	Progress func(done, total uint64)
}

// Match is one occurrence of a pattern.
type Match struct {
	Addr    uint64
	Pattern int // index into the patterns scanned for
}

// Unreadable is a run of pages that could not be read.
type Unreadable struct {
	Addr  uint64
	Len   uint64
	Cause error
}

// Result is what a scan found.
type Result struct {
	Matches    []Match
	Unreadable []Unreadable
	// BytesRead counts memory read (holes and skipped zero ranges excluded).
	BytesRead uint64
}

// Memory scans r from physical address 0 to r.Size() for every pattern.
// Matches are in address order (for equal addresses, in pattern order). The
// error wraps ErrIncomplete when some memory could not be read; the result
// still holds every match found in the memory that could.
//
// A reader that implements physmem.Lender is scanned in place. A reader
// that implements physmem.Sparse has only its data ranges read
// when no pattern holds a zero byte (such a pattern cannot match inside
// zeros, nor across a hole, which the scan never bridges).
func Memory(r physmem.Reader, patterns [][]byte, opt Options) (*Result, error) {
	return Range(r, patterns, 0, r.Size(), opt)
}

// Range is Memory over [start, end) of r alone: the matches that lie
// wholly inside it. Progress counts toward end.
func Range(r physmem.Reader, patterns [][]byte, start, end uint64, opt Options) (*Result, error) {
	if len(patterns) == 0 {
		return nil, errors.New("scan needs at least one pattern")
	}
	longest, zeroFree, zeroPattern := 0, true, false
	for i, p := range patterns {
		if len(p) == 0 {
			return nil, fmt.Errorf("scan pattern %d is empty", i)
		}
		longest = max(longest, len(p))
		zeroFree = zeroFree && bytes.IndexByte(p, 0) < 0
		zeroPattern = zeroPattern || len(bytes.Trim(p, "\x00")) == 0
	}
	batchPages := opt.BatchPages
	if batchPages <= 0 {
		batchPages = DefaultBatchPages
	}
	s := &scanner{patterns: patterns, opt: opt, res: &Result{}, keep: longest - 1, from: start}
	size := min(end, r.Size())
	s.to = size
	if start >= size {
		return s.finish()
	}
	next := func(addr uint64) (uint64, uint64, bool) {
		if addr >= size {
			return 0, 0, false
		}
		return addr, size, true
	}
	if sp, ok := r.(physmem.Sparse); ok && zeroFree {
		next = func(addr uint64) (uint64, uint64, bool) {
			s, e, ok := sp.NextData(addr)
			return s, min(e, size), ok && s < size
		}
	}
	if l, ok := r.(physmem.Lender); ok {
		// One call for the whole range: the lender skips what it knows
		// to be zeros itself (Zero segments), and streams the rest.
		s.buf = make([]byte, s.keep)
		ls := &lender{scanner: s, total: size, zeroFree: zeroFree, zeroPattern: zeroPattern}
		ls.scanRange(l, start, size)
		return s.finish()
	}
	s.ranges = make([]physmem.Range, 0, batchPages)
	sb := spare.Get(longest - 1 + batchPages*pageSize)
	defer spare.Put(sb)
	s.buf = sb.B
	for addr := start; ; {
		start, end, ok := next(addr)
		if !ok || start >= size {
			break
		}
		start, end = start&^(pageSize-1), min((end+pageSize-1)&^(pageSize-1), (size+pageSize-1)&^(pageSize-1))
		if end <= start {
			break
		}
		for base := start; base < end; base += uint64(batchPages) * pageSize {
			n := int(min(uint64(batchPages), (end-base)/pageSize))
			if !s.batch(r, base, n) {
				return s.finish()
			}
			if opt.Progress != nil {
				opt.Progress(base+uint64(n)*pageSize, size)
			}
		}
		addr = end
	}
	return s.finish()
}

// spare keeps scan buffers between scans: an IDS scans again and again,
// and a one-shot scan of a split VM spent 70 of its 150 ms faulting in a
// fresh 16 MiB buffer, mostly inside the socket reads that filled it.
var spare = hugemem.Spare{Max: 2}

// scanner carries the tail of the last readable page across batches, so a
// match straddling two batches is seen whole.
type scanner struct {
	patterns [][]byte
	opt      Options
	res      *Result
	keep     int    // bytes of tail to keep: longest pattern - 1
	from, to uint64 // the range scanned: matches outside it are not kept
	tailLen  int    // valid tail bytes, kept in buf[keep-tailLen:keep]
	tailEnd  uint64
	ranges   []physmem.Range
	buf      []byte // keep bytes of tail, then the batch's pages
}

// batch reads n pages from base and scans every run of readable pages in
// place; false stops the scan (limit reached).
func (s *scanner) batch(r physmem.Reader, base uint64, n int) bool {
	s.ranges = s.ranges[:0]
	for i := range n {
		off := s.keep + i*pageSize
		s.ranges = append(s.ranges, physmem.Range{Addr: base + uint64(i)*pageSize, Buf: s.buf[off : off+pageSize]})
	}
	if err := r.ReadPhys(s.ranges); err != nil && !errors.Is(err, physmem.ErrPartial) {
		for i := range s.ranges {
			if s.ranges[i].Err == nil {
				s.ranges[i].Err = err
			}
		}
	}
	if s.tailEnd != base {
		s.tailLen = 0
	}
	for i := 0; i < n; {
		if err := s.ranges[i].Err; err != nil {
			if !errors.Is(err, physmem.ErrOutOfRange) {
				s.unreadable(s.ranges[i].Addr, err)
			}
			s.tailLen = 0
			i++
			continue
		}
		j := i
		for j < n && s.ranges[j].Err == nil {
			j++
		}
		if !s.run(base, i, j) {
			return false
		}
		i = j
	}
	return true
}

// run scans readable pages [i, j) of the batch at base, with the tail of
// the preceding bytes when they were read just before.
func (s *scanner) run(base uint64, i, j int) bool {
	lo := s.keep + i*pageSize
	tail := 0
	if i == 0 {
		tail = s.tailLen
	}
	window := s.buf[lo-tail : s.keep+j*pageSize]
	start := base + uint64(i)*pageSize - uint64(tail)
	s.res.BytesRead += uint64(j-i) * pageSize
	if !s.find(window, start, tail, false) {
		return false
	}
	// The last keep bytes become the next batch's tail, copied in front of
	// its first page.
	s.tailLen = min(s.keep, len(window))
	copy(s.buf[s.keep-s.tailLen:s.keep], window[len(window)-s.tailLen:])
	s.tailEnd = base + uint64(j)*pageSize
	return true
}

// find reports the matches in window (at addr) that end past its first
// skip bytes (those were found with the bytes before); with seam, only
// those that also begin in them: a stitch holds just the matches that
// straddle its seam. It is false once the match limit is reached.
func (s *scanner) find(window []byte, addr uint64, skip int, seam bool) bool {
	for pi, p := range s.patterns {
		for off := 0; ; off++ {
			k := bytes.Index(window[off:], p)
			if k < 0 {
				break
			}
			off += k
			if seam && off >= skip {
				break // the segment's own search finds it
			}
			if a := addr + uint64(off); off+len(p) <= skip || a < s.from || a+uint64(len(p)) > s.to {
				continue
			}
			s.res.Matches = append(s.res.Matches, Match{Addr: addr + uint64(off), Pattern: pi})
			if s.opt.Limit > 0 && len(s.res.Matches) >= s.opt.Limit {
				return false
			}
		}
	}
	return true
}

func (s *scanner) unreadable(addr uint64, cause error) {
	u := s.res.Unreadable
	if n := len(u); n > 0 && u[n-1].Addr+u[n-1].Len == addr {
		u[n-1].Len += pageSize
		return
	}
	s.res.Unreadable = append(u, Unreadable{Addr: addr, Len: pageSize, Cause: cause})
}

func (s *scanner) finish() (*Result, error) {
	sortMatches(s.res.Matches)
	if n := len(s.res.Unreadable); n > 0 {
		pages := uint64(0)
		for _, u := range s.res.Unreadable {
			pages += u.Len / pageSize
		}
		return s.res, fmt.Errorf("%d pages in %d runs, first at %#x: %v: %w", pages, n, s.res.Unreadable[0].Addr, s.res.Unreadable[0].Cause, ErrIncomplete)
	}
	return s.res, nil
}
