// Package handoff receives a VMM's guest RAM for the split-memory runtime.
//
// userfaultfd works per address space, so the userfaultfd that catches an
// unmodified VMM's (QEMU's) guest-RAM faults must be made inside the VMM.
// The preload library preload/vmemtrans-preload.c (LD_PRELOAD) does that
// when the VMM maps its RAM memfd, registers the mapping for missing and
// write-protect faults, and sends the userfaultfd and the memfd with the
// mapping's address, length and file offset over a unix socket; the VMM's
// mmap returns only after the runtime acknowledges.
//
// Contract:
//   - Listen binds the socket (mode 0600, peers of another user refused);
//     Accept returns one Space per connection: the descriptors and the
//     range, validated (page aligned, non-empty, exactly two descriptors,
//     a userfaultfd and a memfd), or an error that says what was wrong.
//   - The message is 32 bytes in native byte order: "VMTH", u32 version
//     (Version), u64 address, u64 length, u64 file offset, with the
//     userfaultfd and the memfd as SCM_RIGHTS. ParseMessage decodes it.
//   - Ack answers the VMM (0 accepted, else refused) and closes the
//     connection. The caller acks only once the runtime serves the
//     userfaultfd: the VMM touches its RAM right after.
package handoff
