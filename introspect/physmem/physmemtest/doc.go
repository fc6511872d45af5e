// Package physmemtest holds what tests of physical-memory readers share: the
// conformance suite every physmem.Reader must pass (Run), and a writer of
// synthetic QEMU dump-guest-memory ELF cores (BuildDump) so dump readers and
// the code above them can be tested without booting a guest.
package physmemtest
