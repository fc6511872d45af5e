package main

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/kernel"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
)

// bindKernel binds a profile to guest memory: the running kernel as a
// linux.Target. live carries the registers QMP gave; a dump's own CPU notes
// are used otherwise, and without either the kernel is found by scanning.
func bindKernel(r physmem.Reader, prof *profile.Profile, live *image.CPUState) (*kernel.Kernel, error) {
	var opt kernel.Options
	if live != nil {
		opt.CR3, opt.Mode = live.CR3, paging.ModeFromCR4(live.CR4)
	}
	k, err := kernel.New(r, prof, opt)
	if err != nil {
		return nil, fmt.Errorf("locate the guest kernel: %w", err)
	}
	log.Debug().Str("method", string(k.Method())).Str("slide", fmt.Sprintf("%#x", k.Slide())).Msg("kernel bound")
	return k, nil
}
