package main

import (
	"context"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/source"
	"github.com/vmemtrans/vmemtrans/kvmhost"
)

// guestFreePages finds the frames the guest kernel's buddy allocator holds
// free, within layout: the pages a workload may write without changing
// anything an IDS reads about the kernel.
func guestFreePages(ctx context.Context, img *image.Image, layout []fabric.PhysRange) ([]fabric.GFN, error) {
	spec := source.Spec{Reader: img, Log: log}
	for _, c := range img.CPUs() {
		if c.HasControl {
			spec.CPU = &c
			break
		}
	}
	src, err := source.Open(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return kvmhost.FreeGFNs(src.Kernel, layout)
}
