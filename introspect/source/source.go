package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/kernel"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
	"github.com/vmemtrans/vmemtrans/introspect/qemu"
)

// ErrSpec reports a Spec with no memory source or conflicting ones.
var ErrSpec = errors.New("memory source")

// Spec says where a guest's memory is and how its kernel is described.
// Exactly one source: Image, QMP with MemPath, or Reader.
type Spec struct {
	Image string // memory image: raw, QEMU ELF dump, or zstd of either
	// MaxImageSize bounds the guest memory Image may hold or expand to
	// (0: image.DefaultMaxSize).
	MaxImageSize uint64
	// ImageProgress, when set, follows scans of Image (image.Options).
	ImageProgress func(done, total uint64)
	QMP           string // QMP socket of a live QEMU guest (with MemPath)
	MemPath       string // the live guest's memory-backend file (with QMP)
	Pause         bool   // pause the live guest while the Source is open (consistent view)

	// Reader is guest physical memory the caller already has, such as a
	// split-memory VM's. CPU gives its registers when known (CR3, CR4);
	// without them the kernel is found by scanning. Closer, if set, is
	// closed with the Source (the Reader's owner).
	Reader physmem.Reader
	CPU    *image.CPUState
	Closer io.Closer

	Vmlinuz string // the guest's kernel image; "" builds the profile from guest memory
	Log     zerolog.Logger
}

// Source is an opened guest: its running kernel.
type Source struct {
	Kernel      *kernel.Kernel
	ProfileTime time.Duration // how long building the kernel profile took
	closers     []func() error
}

// Close releases the source in reverse order of acquisition (resuming a
// paused guest before closing its monitor).
func (s *Source) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

func (sp Spec) check() error {
	live := sp.QMP != "" || sp.MemPath != ""
	n := 0
	for _, set := range []bool{sp.Image != "", live, sp.Reader != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return fmt.Errorf("%w: give one of an image, a live guest (QMP and memory file) or a reader", ErrSpec)
	case n == 0:
		return fmt.Errorf("%w: give an image, or a live guest's QMP socket and memory file", ErrSpec)
	case live && (sp.QMP == "" || sp.MemPath == ""):
		return fmt.Errorf("%w: a live guest needs both its QMP socket and its memory file", ErrSpec)
	case sp.Pause && !live:
		return fmt.Errorf("%w: pausing needs a live guest (QMP)", ErrSpec)
	}
	return nil
}

// Open reads the described source and binds its kernel. The caller closes
// the Source; on error everything acquired is released.
func Open(ctx context.Context, sp Spec) (*Source, error) {
	if err := sp.check(); err != nil {
		return nil, err
	}
	s := &Source{}
	if sp.Closer != nil {
		s.closers = append(s.closers, sp.Closer.Close)
	}
	r, cpu, err := s.memory(ctx, sp)
	if err != nil {
		s.Close()
		return nil, err
	}
	t0 := time.Now()
	var prof *profile.Profile
	var info profile.MemoryInfo
	if sp.Vmlinuz != "" {
		if prof, err = profile.FromVmlinuz(sp.Vmlinuz); err != nil {
			s.Close()
			return nil, fmt.Errorf("kernel profile from %s: %w (is it the guest's own kernel image?)", sp.Vmlinuz, err)
		}
	} else if prof, info, err = profile.FromMemory(r, profile.MemoryOptions{}); err != nil {
		s.Close()
		return nil, fmt.Errorf("kernel profile from guest memory: %w (is this the memory of a Linux x86-64 guest? the guest's kernel image (vmlinuz) may help)", err)
	}
	s.ProfileTime = time.Since(t0)
	sp.Log.Debug().Str("release", prof.Release()).Int("symbols", prof.SymbolCount()).Dur("took", s.ProfileTime).Msg("kernel profile")
	// The slide the guest stated (VMCOREINFO) or its kallsyms imply is
	// checked first; kernel.New probes every other one only if it is wrong.
	opt := kernel.Options{Slide: info.Slide, SlideKnown: info.SlideKnown}
	if cpu != nil {
		opt.CR3, opt.Mode = cpu.CR3, paging.ModeFromCR4(cpu.CR4)
	}
	if s.Kernel, err = kernel.New(r, prof, opt); err != nil {
		s.Close()
		return nil, fmt.Errorf("locate the guest kernel: %w", err)
	}
	sp.Log.Debug().Str("method", string(s.Kernel.Method())).Str("slide", fmt.Sprintf("%#x", s.Kernel.Slide())).Msg("kernel bound")
	return s, nil
}

// memory opens the guest memory and returns the registers known from
// outside it (a dump carries its own, which kernel.New reads).
func (s *Source) memory(ctx context.Context, sp Spec) (physmem.Reader, *image.CPUState, error) {
	switch {
	case sp.Reader != nil:
		return sp.Reader, sp.CPU, nil
	case sp.Image != "":
		img, err := image.OpenWith(sp.Image, image.Options{MaxSize: sp.MaxImageSize, Progress: sp.ImageProgress})
		if err != nil {
			return nil, nil, err
		}
		s.closers = append(s.closers, img.Close)
		return img, nil, nil
	}
	mon, err := qemu.Dial(ctx, sp.QMP)
	if err != nil {
		return nil, nil, err
	}
	s.closers = append(s.closers, mon.Close)
	if sp.Pause {
		if err := mon.Pause(ctx); err != nil {
			return nil, nil, err
		}
		s.closers = append(s.closers, func() error { return mon.Resume(context.Background()) })
	}
	cr3, cr4, err := mon.CR3(ctx)
	if err != nil {
		return nil, nil, err
	}
	img, err := image.OpenMemFile(sp.MemPath, nil)
	if err != nil {
		return nil, nil, err
	}
	s.closers = append(s.closers, img.Close)
	return img, &image.CPUState{CR3: cr3, CR4: cr4, HasControl: true}, nil
}
