//go:build linux

package main

import "syscall"

// vmmProcAttr makes the kernel kill QEMU if the runtime dies: a guest whose
// faults nobody serves would hang for ever.
func vmmProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
