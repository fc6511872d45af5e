package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/source"
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
	end := layout[len(layout)-1].End
	pfns, err := linux.FreePages(src.Kernel, end>>fabric.PageShift)
	if err != nil {
		return nil, fmt.Errorf("free pages: %w", err)
	}
	out := make([]fabric.GFN, 0, len(pfns))
	i := 0
	for _, p := range pfns { // both ascending
		g := fabric.GFN(p)
		for i < len(layout) && layout[i].End <= g.Addr() {
			i++
		}
		if i < len(layout) && layout[i].Start <= g.Addr() {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the guest kernel holds no free page in the image's layout")
	}
	return out, nil
}
