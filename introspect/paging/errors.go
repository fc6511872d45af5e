package paging

import "errors"

var (
	// ErrNotPresent reports a virtual address some table entry does not map.
	ErrNotPresent = errors.New("page not present")
	// ErrNonCanonical reports a virtual address outside the canonical halves.
	ErrNonCanonical = errors.New("non-canonical virtual address")
	// ErrTableRead reports a page-table entry that could not be read.
	ErrTableRead = errors.New("page table unreadable")
)
