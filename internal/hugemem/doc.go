// Package hugemem maps anonymous memory outside the Go heap, aligned to
// 2 MiB and advised to use transparent huge pages.
//
// In a VM a 4 KiB page fault costs 6-13 µs (zeroing, the host backing the
// page) against 0.25-0.7 µs per 4 KiB on a 2 MiB fault, measured on the
// project's build machines; large buffers that are filled once and reused
// (the adaptive page cache, scan batches) are made here. Contract:
//   - Map(n) returns at least n usable bytes (len n) and a release that
//     unmaps them; nothing is faulted in by Map itself.
//   - Reserve(n) is Map without the advice, for memory filled piecemeal
//     whose dense parts the caller advises (a seekable image's frames).
//   - Advise(b) asks the same of a large Go allocation that is fresh and
//     about to be written whole and kept (a kernel profile's symbol names):
//     the collector still owns it, only its backing changes.
//   - Where huge pages are not available the advice is ignored and 4 KiB
//     pages serve; where anonymous mappings are not (other systems) the Go
//     heap serves and release does nothing.
//   - Spare keeps a few such buffers between uses (scan batches, the
//     rounds of fabric.Memory.LendPhys) and releases them on Close;
//     Prefill makes and faults them in ahead of use, and a Get meanwhile
//     waits for one rather than fault in its own.
package hugemem
