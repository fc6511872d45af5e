// Package profile derives a kernel "profile" — its symbols and its type
// layout — from the kernel itself, with no debug package and no
// System.map.
//
// A Profile is pure data about one kernel build and is deterministic: two
// profiles of the same build are Equal and share a Fingerprint whichever way
// they were obtained.
//
//   - FromVmlinuz / FromVmlinuzBytes unpack the vmlinux from a bzImage (xz
//     payload) and hand it to FromVmlinux.
//   - FromVmlinux reads the ELF image: symbols from the kallsyms tables found
//     by scanning .rodata (cross-checked against the exported __ksymtab and
//     __ksymtab_gpl entries), types from the .BTF section, the release from
//     linux_banner.
//   - FromMemory finds the same kallsyms tables and BTF blob in guest
//     physical memory (the kernel image is physically contiguous): where the
//     guest's VMCOREINFO says they are (Linux 6.0+), else by the token
//     table's signature, whichever one scan meets first. Symbols there are
//     already relocated; they are brought back to link addresses and the
//     virtual KASLR slide that was removed is reported. While kallsyms
//     decode, the BTF is guessed (the first vmlinux-sized blob after the
//     token table, within 16 MiB; the search stops at the first such
//     header), parsed and its task_struct built on a second goroutine; the
//     guess is kept only if it is the blob __start_BTF points at. Both are
//     read where they lie when the reader lends them whole.
//
// Every kallsyms layout the kernel has used decodes: absolute addresses,
// base-relative offsets (with or without absolute per-CPU symbols, before
// kallsyms_num_syms up to 6.3 or after the token index from 6.4), and 7.x's
// entry-relative offsets with 4-byte-aligned tables. A decode is accepted
// only if it holds thousands of printable typed names with sorted
// addresses, _text < _end within one image, and (from a vmlinux) agrees
// with __ksymtab; when none is, the error names every candidate and why it
// was rejected.
//
// Symbol addresses in a Profile are link-time (unslid) virtual addresses.
// Per-CPU symbols are absolute offsets (below KernelMapBase) and are never
// slid. introspect/kernel binds a Profile to a running guest.
package profile
