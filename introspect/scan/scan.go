package scan

import (
	"bytes"
	"errors"
	"fmt"

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
	// Progress, when set, is called after each batch with the bytes done and
	// the total.
	Progress func(done, total uint64)
}

// Match is one occurrence of a pattern.
type Match struct {
	Addr    uint64 `json:"-"`
	Pattern int    `json:"pattern"` // index into the patterns scanned for
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
	// BytesRead counts memory read (holes excluded).
	BytesRead uint64
}

// Memory scans r from physical address 0 to r.Size() for every pattern.
// Matches are in address order (for equal addresses, in pattern order). The
// error wraps ErrIncomplete when some memory could not be read; the result
// still holds every match found in the memory that could.
func Memory(r physmem.Reader, patterns [][]byte, opt Options) (*Result, error) {
	longest := 0
	for i, p := range patterns {
		if len(p) == 0 {
			return nil, fmt.Errorf("scan pattern %d is empty", i)
		}
		longest = max(longest, len(p))
	}
	if len(patterns) == 0 {
		return nil, errors.New("scan needs at least one pattern")
	}
	batchPages := opt.BatchPages
	if batchPages <= 0 {
		batchPages = DefaultBatchPages
	}
	s := &scanner{patterns: patterns, opt: opt, res: &Result{}, keep: longest - 1}
	size := r.Size() &^ (pageSize - 1)
	ranges := make([]physmem.Range, 0, batchPages)
	bufs := make([]byte, batchPages*pageSize)
	for base := uint64(0); base < size; base += uint64(batchPages) * pageSize {
		ranges = ranges[:0]
		for i := 0; i < batchPages && base+uint64(i)*pageSize < size; i++ {
			ranges = append(ranges, physmem.Range{Addr: base + uint64(i)*pageSize, Buf: bufs[i*pageSize : (i+1)*pageSize]})
		}
		if err := r.ReadPhys(ranges); err != nil && !errors.Is(err, physmem.ErrPartial) {
			for i := range ranges {
				if ranges[i].Err == nil {
					ranges[i].Err = err
				}
			}
		}
		for _, rg := range ranges {
			if !s.page(rg) {
				return s.finish()
			}
		}
		if opt.Progress != nil {
			opt.Progress(min(base+uint64(batchPages)*pageSize, size), size)
		}
	}
	return s.finish()
}

// scanner carries the tail of the previous readable page across pages, so
// a match straddling a page boundary is seen whole.
type scanner struct {
	patterns [][]byte
	opt      Options
	res      *Result
	keep     int    // bytes of tail to keep: longest pattern - 1
	tail     []byte // the last keep bytes before tailEnd, contiguous
	tailEnd  uint64 // physical address just past tail
	window   []byte
}

// page scans one page of the batch; false stops the scan (limit reached).
func (s *scanner) page(rg physmem.Range) bool {
	if rg.Err != nil {
		s.tail = s.tail[:0]
		if !errors.Is(rg.Err, physmem.ErrOutOfRange) {
			s.unreadable(rg.Addr, rg.Err)
		}
		return true
	}
	s.res.BytesRead += uint64(len(rg.Buf))
	if s.tailEnd != rg.Addr {
		s.tail = s.tail[:0]
	}
	s.window = append(append(s.window[:0], s.tail...), rg.Buf...)
	start := rg.Addr - uint64(len(s.tail))
	// A match must end inside this page: one that ended in the tail was
	// reported with the previous page.
	for pi, p := range s.patterns {
		for off := 0; ; off++ {
			j := bytes.Index(s.window[off:], p)
			if j < 0 {
				break
			}
			off += j
			if off+len(p) <= len(s.tail) {
				continue
			}
			s.res.Matches = append(s.res.Matches, Match{Addr: start + uint64(off), Pattern: pi})
			if s.opt.Limit > 0 && len(s.res.Matches) >= s.opt.Limit {
				return false
			}
		}
	}
	keep := min(s.keep, len(s.window))
	s.tail = append(s.tail[:0], s.window[len(s.window)-keep:]...)
	s.tailEnd = rg.Addr + uint64(len(rg.Buf))
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
