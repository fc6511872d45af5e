package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
	"github.com/vmemtrans/vmemtrans/introspect/qemu"
)

// errSource reports missing or conflicting memory-source flags.
var errSource = errors.New("memory source")

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
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "guest memory image: raw, QEMU ELF dump, or zstd of either")
	fl.StringVar(&f.qmp, "qmp", "", "QMP socket of a live QEMU guest (with --mem-path)")
	fl.StringVar(&f.memPath, "mem-path", "", "memory-backend-file of the live QEMU guest (with --qmp)")
	fl.BoolVar(&f.pause, "pause", false, "pause the live guest while reading it (consistent view)")
	fl.StringVar(&f.vmlinuz, "vmlinuz", "", "the guest's vmlinuz (symbols and types from it; without it, from guest memory alone)")
	fl.IntVar(&f.maxObjects, "max-objects", 0, fmt.Sprintf("bound on the objects one walk visits (0: %d)", linux.DefaultMaxObjects))
	fl.StringVar(&f.maxImage, "max-image-size", "64GiB", "refuse an --image holding or expanding to more guest memory than this (bytes, or K/M/G/TiB)")
}

// session is an opened guest: its kernel as a linux.Target and how long
// building the kernel profile took.
type session struct {
	target      linux.Target
	profileTime time.Duration
	closers     []func() error
}

func (s *session) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

func (f *sourceFlags) options() linux.Options {
	return linux.Options{MaxObjects: f.maxObjects}
}

// open reads the selected source and binds its kernel. The caller closes the
// session (which resumes a guest it paused).
func (f *sourceFlags) open(ctx context.Context) (*session, error) {
	isLive := f.qmp != "" || f.memPath != ""
	switch {
	case f.image != "" && isLive:
		return nil, fmt.Errorf("%w: --image excludes --qmp/--mem-path", errSource)
	case f.image == "" && !isLive:
		return nil, fmt.Errorf("%w: give --image FILE, or --qmp SOCK with --mem-path FILE", errSource)
	case isLive && (f.qmp == "" || f.memPath == ""):
		return nil, fmt.Errorf("%w: --qmp and --mem-path go together", errSource)
	case f.pause && !isLive:
		return nil, fmt.Errorf("%w: --pause needs a live guest (--qmp)", errSource)
	}
	s := &session{}
	var img *image.Image
	var live *image.CPUState
	var err error
	if f.image != "" {
		maxSize, err := parseByteSize(f.maxImage)
		if err != nil {
			return nil, fmt.Errorf("--max-image-size: %w", err)
		}
		if img, err = image.OpenWith(f.image, image.Options{MaxSize: maxSize}); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, img.Close)
	} else {
		mon, err := qemu.Dial(ctx, f.qmp)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, mon.Close)
		if f.pause {
			if err := mon.Pause(ctx); err != nil {
				s.Close()
				return nil, err
			}
			s.closers = append(s.closers, func() error { return mon.Resume(context.Background()) })
		}
		cr3, cr4, err := mon.CR3(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		live = &image.CPUState{CR3: cr3, CR4: cr4, HasControl: true}
		if img, err = image.OpenMemFile(f.memPath, nil); err != nil {
			s.Close()
			return nil, err
		}
		s.closers = append(s.closers, img.Close)
	}
	t0 := time.Now()
	var prof *profile.Profile
	if f.vmlinuz != "" {
		prof, err = profile.FromVmlinuz(f.vmlinuz)
	} else {
		prof, _, err = profile.FromMemory(img, profile.MemoryOptions{})
	}
	if err != nil {
		s.Close()
		if f.vmlinuz != "" {
			return nil, fmt.Errorf("kernel profile from %s: %w (is it the guest's own kernel image?)", f.vmlinuz, err)
		}
		return nil, fmt.Errorf("kernel profile from guest memory: %w (is this the memory of a Linux x86-64 guest? --vmlinuz with the guest's kernel image may help)", err)
	}
	s.profileTime = time.Since(t0)
	log.Debug().Str("release", prof.Release()).Int("symbols", prof.SymbolCount()).Dur("took", s.profileTime).Msg("kernel profile")
	if s.target, err = bindKernel(img, prof, live); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
