// Package qemu talks to a running QEMU guest over QMP: vCPU registers from the human monitor's
// "info registers -a" (CR3 and CR4 above all, for page-table walks), pause
// and resume, run state, and dump-guest-memory into an ELF core that
// image.Open reads.
//
// Guest memory itself is read by image.OpenMemFile from the guest's
// memory-backend-file; this package only supplies what the memory cannot:
// registers and run control. Pause the guest for a consistent view.
//
// The QMP session is this package's own small client (session.go): the
// go-qemu socket monitor races on its reply buffers (go-qemu#226), and a
// corrupted CR3 would send every page-table walk astray.
//
// ParseRegisters parses the monitor's text and is fuzzed; it never trusts
// the text to be well-formed.
package qemu
