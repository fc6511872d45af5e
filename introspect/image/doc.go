// Package image implements the physmem.Reader contract over memory images.
//
// Implementations, all returning *Image:
//   - NewBytes: a byte slice whose index is the physical address (tests).
//   - OpenRaw: a raw image file whose offset is the physical address,
//     mapped read-only.
//   - ParseDump / OpenDump: a QEMU dump-guest-memory ELF core (paging=false):
//     PT_LOAD segments placed by p_paddr, per-CPU registers (CR3, CR4) from
//     the NT_PRSTATUS and "QEMU" notes, VMCOREINFO text.
//   - Open / OpenWith: sniffs the file (zstd, then ELF core or raw). A
//     seekable zstd file (zstd's seekable format: independent frames and a
//     seek table, written by WriteSeekable or `vmemtrans image compress`)
//     is decompressed frame by frame as reads reach it, into anonymous
//     memory backed by huge pages: an IDS that reads a tenth of a guest
//     decompresses about that. Any other zstd input is decompressed whole
//     into an anonymous memory file and mapped, so a large image never sits
//     twice in the Go heap. Either way all-zero pages are never written
//     (they cost no memory and are lent as Zero segments), and a frame that
//     fails to decompress fails only the reads that touch it.
//
// Bounds on hostile or huge input: Options.MaxSize (default 1 TiB) bounds a
// file's size and what a zstd file may expand to or its seek table declare
// (ErrTooLarge beyond it); a seek table must tile the file exactly, and a
// frame must expand to what the table says (ErrFormat otherwise); a
// PT_LOAD must end below 2^52; e_phnum PN_XNUM is read from section header 0.
// Every image implements physmem.Sparse: holes of sparse files (SEEK_DATA),
// zero pages of decompressed images and ELF zero tails are never read, so
// scans skip them. Reads of 1 MiB or more from an uncompressed file go
// through pread and drop their pages from the page cache behind them.
//   - OpenMemFile: a live QEMU guest's memory-backend-file, placed in guest
//     physical space by a Layout (PCLayout, Q35Layout), read with pread so a
//     hole in the file is never allocated by the reader.
//
// imagetest writes synthetic QEMU ELF cores for tests.
package image
