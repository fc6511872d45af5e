// Package kernel binds a profile (introspect/profile) to a running guest:
// guest physical memory, the page tables to read kernel virtual memory
// through, and the KASLR slide. *Kernel implements linux.Target.
//
// New finds what the guest does not say:
//
//   - With a CR3 (from a dump's CPU notes, QMP, or Options), the virtual
//     slide is probed: init_task+slide for every 2 MiB step in 0..1 GiB, all
//     512 candidates translated and read in one batch, until one reads
//     comm "swapper/0" with pid 0.
//   - Without registers, physical memory is scanned for init_task's comm
//     "swapper/0" at its BTF offset with pid 0 beside it (Volatility's
//     method). The kernel image being physically contiguous, that gives the
//     physical address of every image symbol; init_mm.pgd then gives the
//     slide (it holds init_top_pgt's runtime address) and CR3 (init_top_pgt's
//     physical address). phys_base may be negative: all of this is modulo
//     2^64.
//
// A CR3 whose probe finds nothing (stale, foreign) falls back to the scan.
// Method reports which path bound the kernel.
//
// Symbol returns runtime addresses: link address plus slide, except per-CPU
// offsets, which are absolute. Paging mode comes from CR4.LA57 when known,
// else 4-level is tried before 5-level.
package kernel
