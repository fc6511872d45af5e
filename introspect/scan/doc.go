// Package scan is the whole-memory signature scan IDS: it reads all of a
// guest's physical memory through any physmem.Reader, in large batches, and
// reports every occurrence of one or more byte patterns by guest-physical
// address (Memory; Range searches a part of it). A reader that is a
// physmem.Lender is searched in place, with no batch buffer and no copy:
// the scanner stitches the seams between segments (the last bytes of one
// before the first of the next), skips Zero segments when no pattern holds
// a zero byte, and undoes what it concluded from a segment the lender
// shows again (Retry).
//
// Contract: a page that is not memory (physmem.ErrOutOfRange: a hole of the
// guest's physical address space) is skipped; a page that is memory but
// cannot be read (a dead sub-host, a truncated image) is never read as
// zeros: it is reported in Result.Unreadable, and the scan is then
// incomplete, which callers must say ("could not check"). A match that
// straddles two batches is found once, whole; a match that touches an
// unreadable page is not reported.
//
// Owners (the processes that map a match, and where) come from
// introspect/linux.MapOwners, after the scan, for the matched pages only.
package scan
