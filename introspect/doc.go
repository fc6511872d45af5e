// Package introspect turns guest physical memory into Linux kernel objects,
// without debug symbols or prepared profiles.
//
// Everything reads through physmem.Reader, a batched physical-memory interface
// with per-range errors, so the same code runs on a raw image, a QEMU ELF
// dump, a live QEMU guest's memory file, or the split-memory fabric.
//
// Sub-packages, in dependency order: physmem (the reading contract), image
// (memory images and live QEMU memory files), paging (x86-64
// translation, batched level by level), profile (pure: symbols and BTF type
// layout of one kernel build), kernel (live: a profile bound to a reader, CR3
// and the KASLR slide), linux (walkers and IDS checks over a kernel), qemu
// (QMP), source (a guest from a description: an image, a live QEMU guest or
// a reader, to a bound kernel).
//
// introspect imports no other VMemTrans package.
package introspect
