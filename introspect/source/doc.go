// Package source opens a guest's memory and binds its running kernel from a
// description of where the memory is (Spec): a memory image, a live QEMU
// guest (QMP socket and memory-backend file), or any physmem.Reader the
// caller already has (a split-memory VM's fabric.Memory, a test's fault
// injector) with the registers it knows. The kernel profile comes from the
// guest's vmlinuz when given, else from guest memory alone. The result is a
// kernel.Kernel, a linux.Target every IDS walker and check runs on; closing
// the Source releases what Open acquired (and resumes a guest it paused).
package source
