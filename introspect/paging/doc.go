// Package paging translates x86-64 virtual addresses to guest physical
// addresses by walking the guest's page tables through a physmem.Reader.
//
// The walk is a table of levels (Mode): four levels (PML4, PDPT, PD, PT) or
// five with LA57 (PML5 first); 1 GiB pages end the walk at the PDPT, 2 MiB
// pages at the PD. Translation is batched: Translate walks every pending
// address together, one physmem batch per level, each page-table entry read
// once however many addresses share it. Each address gets its own result:
// a physical address and page size, or an error wrapping ErrNotPresent,
// ErrNonCanonical or ErrTableRead.
//
// A Translator caches translations keyed by (CR3, page), recording the page
// size, so addresses in one 2 MiB or 1 GiB page share an entry. The cache is
// dropped when CR3 changes (SetCR3) and by the caller when page tables may
// have changed (Invalidate, InvalidateRange); not-present results are never
// cached. ReadVirt reads virtual ranges on top: it splits them at page
// boundaries, translates in one batch, reads in one batch and reports an
// error per range.
//
// CR3: the table base is CR3 bits 12..51 (PCID in bits 0..11 and the no-flush
// bit 63 are dropped). Under page-table isolation (PTI), Linux runs user mode
// on a second PGD 4 KiB above the kernel one and sets CR3 bit 12: mask
// ~0x1fff (KernelCR3) to walk the kernel's own tables from a CR3 caught in
// user mode. Without PTI bit 12 is an address bit, so a CR3 with it set is
// one of two tables (KernelCR3Candidates); only a walk tells which.
//
// A Translator is safe for concurrent use.
package paging
