package main

import (
	"errors"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
)

// bindKernel binds a profile to guest memory: the running kernel as a
// linux.Target. The vCPU states give CR3 when the source has them.
func bindKernel(r physmem.Reader, prof *profile.Profile, cpus []physmem.CPUState) (linux.Target, error) {
	return nil, errors.New("kernel binding: introspect/kernel not available yet")
}
