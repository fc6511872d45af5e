package main

import (
	"context"
	"errors"
	"io"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/qemu"
	"github.com/vmemtrans/vmemtrans/introspect/source"
)

// liveRegisters takes CR3 and CR4 of a split VM that a live QEMU runs from
// its QMP socket (they change as the guest runs), pausing the guest first
// with --pause (resumed when the session closes). The monitor is closed
// with spec's reader.
func liveRegisters(ctx context.Context, spec *source.Spec, qmp string) error {
	reader := spec.Closer
	mon, err := qemu.Dial(ctx, qmp)
	if err != nil {
		reader.Close()
		return err
	}
	c := &liveCloser{closers: []io.Closer{reader, mon}}
	if spec.Pause {
		if err := mon.Pause(ctx); err != nil {
			c.Close()
			return err
		}
		c.resume = mon
		spec.Pause = false // paused here; the source sees a plain reader
	}
	cr3, cr4, err := mon.CR3(ctx)
	if err != nil {
		c.Close()
		return err
	}
	spec.CPU = &image.CPUState{CR3: cr3, CR4: cr4, HasControl: true}
	spec.Closer = c
	return nil
}

// liveCloser resumes a paused guest, then closes the reader and monitor.
type liveCloser struct {
	resume  *qemu.Monitor
	closers []io.Closer
}

func (c *liveCloser) Close() error {
	var errs []error
	if c.resume != nil {
		errs = append(errs, c.resume.Resume(context.Background()))
		c.resume = nil
	}
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i].Close())
	}
	c.closers = nil
	return errors.Join(errs...)
}
