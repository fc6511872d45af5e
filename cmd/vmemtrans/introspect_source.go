package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/source"
)

// sourceFlags select the guest memory the introspection commands read and
// how its kernel is described.
type sourceFlags struct {
	image      string
	qmp        string
	memPath    string
	pause      bool
	vmlinuz    string
	maxObjects int
	maxImage   string
	vm         vmFlags
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "guest memory image: raw, QEMU ELF dump, or zstd of either")
	fl.StringVar(&f.qmp, "qmp", "", "QMP socket of a live QEMU guest (with --mem-path)")
	fl.StringVar(&f.memPath, "mem-path", "", "memory-backend-file of the live QEMU guest (with --qmp)")
	fl.BoolVar(&f.pause, "pause", false, "pause the live guest while reading it (consistent view)")
	fl.StringVar(&f.vmlinuz, "vmlinuz", "", "the guest's vmlinuz (symbols and types from it; without it, from guest memory alone)")
	fl.IntVar(&f.maxObjects, "max-objects", 0, fmt.Sprintf("bound on the objects one walk visits (0: %d)", linux.DefaultMaxObjects))
	f.vm.register(cmd)
	fl.StringVar(&f.maxImage, "max-image-size", "1TiB", "refuse an --image holding or expanding to more guest memory than this (bytes, or K/M/G/TiB)")
}

// session is an opened guest: its kernel as a linux.Target.
type session struct {
	target linux.Target
	src    *source.Source
}

func (s *session) Close() error {
	if s.src == nil {
		return nil
	}
	return s.src.Close()
}

func (f *sourceFlags) options() linux.Options {
	return linux.Options{MaxObjects: f.maxObjects}
}

func (f *sourceFlags) spec() (source.Spec, error) {
	var maxImage uint64
	if f.maxImage != "" {
		var err error
		if maxImage, err = parseByteSize(f.maxImage); err != nil {
			return source.Spec{}, fmt.Errorf("--max-image-size: %w", err)
		}
	}
	return source.Spec{Image: f.image, MaxImageSize: maxImage, ImageProgress: progressBar("scanning guest memory"), QMP: f.qmp, MemPath: f.memPath, Pause: f.pause, Vmlinuz: f.vmlinuz, Log: log}, nil
}

// open reads the selected source and binds its kernel. The caller closes the
// session (which resumes a guest it paused).
func (f *sourceFlags) open(ctx context.Context) (*session, error) {
	spec, err := f.spec()
	if err != nil {
		return nil, err
	}
	if f.vm.socket != "" {
		if err := f.vm.attach(ctx, &spec); err != nil {
			return nil, err
		}
	}
	src, err := source.Open(ctx, spec)
	if errors.Is(err, source.ErrSpec) {
		return nil, fmt.Errorf("%w (--vm SOCK, --image FILE, or --qmp SOCK with --mem-path FILE)", err)
	}
	if err != nil {
		return nil, err
	}
	return &session{target: src.Kernel, src: src}, nil
}
