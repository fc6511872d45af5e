// Package image implements the physmem.Reader contract over memory images.
//
// Implementations, all returning *Image:
//   - NewBytes: a byte slice whose index is the physical address (tests).
//   - OpenRaw: a raw image file whose offset is the physical address,
//     mapped read-only.
//   - ParseDump / OpenDump: a QEMU dump-guest-memory ELF core (paging=false):
//     PT_LOAD segments placed by p_paddr, per-CPU registers (CR3, CR4) from
//     the NT_PRSTATUS and "QEMU" notes, VMCOREINFO text.
//   - Open: sniffs the file (zstd, then ELF core or raw). zstd input is
//     decompressed into an anonymous memory file and mapped, so a large
//     image never sits twice in the Go heap.
//   - OpenMemFile: a live QEMU guest's memory-backend-file, placed in guest
//     physical space by a Layout (PCLayout, Q35Layout), read with pread so a
//     hole in the file is never allocated by the reader.
//
// imagetest writes synthetic QEMU ELF cores for tests.
package image
