package kernel

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/profile"
)

// Options says what is known about the guest's registers.
type Options struct {
	// CR3 is a vCPU's CR3 (raw: PCID and the PTI user bit are masked off
	// here); 0 means unknown. When 0 and the reader records CPU state (a
	// QEMU ELF dump), the first CPU's CR3 is used.
	CR3 uint64
	// Mode is the paging mode; 0 means from the CPU's CR4 if known, else
	// 4-level first, then 5-level.
	Mode paging.Mode
	// NoCPUState ignores CPU state recorded in the reader, forcing the
	// physical scan when CR3 is 0.
	NoCPUState bool
	// Slide, when SlideKnown, is the slide the caller was told (by the
	// guest's VMCOREINFO, through profile.FromMemory): a probe through a
	// CR3 checks it first and tries every other candidate only if
	// init_task is not there.
	Slide      uint64
	SlideKnown bool
}

// cpuStater is implemented by readers that carry vCPU registers
// (image.Image from a QEMU ELF dump).
type cpuStater interface {
	CPUs() []image.CPUState
}

// Method says how New found the slide.
type Method string

// The discovery methods.
const (
	MethodProbe Method = "cr3-probe"     // slide probed through a given CR3
	MethodScan  Method = "physical-scan" // init_task found in physical memory
)

// Kernel is a profile bound to a guest's memory. Safe for concurrent use.
type Kernel struct {
	prof     *profile.Profile
	r        physmem.Reader
	tr       *paging.Translator
	slide    uint64
	physBase uint64
	method   Method
}

// New binds p to the guest whose physical memory r reads. With a CR3 the
// slide is probed through its page tables; without one, or if the probe
// finds nothing, physical memory is scanned for init_task.
func New(r physmem.Reader, p *profile.Profile, opts Options) (*Kernel, error) {
	l, err := layoutOf(p)
	if err != nil {
		return nil, err
	}
	cr3, mode := opts.CR3, opts.Mode
	if cs, ok := r.(cpuStater); ok && cr3 == 0 && !opts.NoCPUState {
		for _, c := range cs.CPUs() {
			if c.HasControl && c.CR3 != 0 {
				cr3 = c.CR3
				if mode == 0 {
					mode = paging.ModeFromCR4(c.CR4)
				}
				break
			}
		}
	}
	modes := []paging.Mode{paging.FourLevel, paging.FiveLevel}
	if mode != 0 {
		modes = []paging.Mode{mode}
	}
	k := &Kernel{prof: p, r: r}
	hint := slideHint{opts.Slide, opts.SlideKnown}
	if cr3 != 0 {
		var perr error
		for _, c := range paging.KernelCR3Candidates(cr3) {
			err := k.bindByProbe(l, c, modes, hint)
			if err == nil {
				return k, nil
			}
			if perr == nil {
				perr = err
			}
		}
		// a stale or foreign CR3 should not stop discovery: the scan needs none
		if serr := k.bindByScan(l, modes); serr != nil {
			return nil, fmt.Errorf("%w; without cr3: %w", perr, serr)
		}
		return k, nil
	}
	if err := k.bindByScan(l, modes); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Kernel) bindByProbe(l layout, cr3 uint64, modes []paging.Mode, hint slideHint) error {
	var firstErr error
	for _, m := range modes {
		tr := paging.New(k.r, cr3, m)
		slide, err := probeSlide(tr, l, hint)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		textPA, err := tr.TranslateOne(l.text + slide)
		if err != nil {
			return fmt.Errorf("translate _text at slide %#x: %w", slide, err)
		}
		k.tr, k.slide, k.method = tr, slide, MethodProbe
		k.physBase = textPA - (l.text + slide - profile.KernelMapBase)
		return nil
	}
	return firstErr
}

func (k *Kernel) bindByScan(l layout, modes []paging.Mode) error {
	lastErr := fmt.Errorf("no swapper/0 task in %d bytes of physical memory: %w", k.r.Size(), ErrNoInitTask)
	scanInitTask(k.r, l, func(taskPA uint64) bool {
		delta := taskPA - l.initTask // physical = link + delta, for every image symbol
		pgdAt := l.initMM + delta + l.pgdOff
		buf := make([]byte, 8)
		if err := k.r.ReadPhys([]physmem.Range{{Addr: pgdAt, Buf: buf}}); err != nil {
			lastErr = fmt.Errorf("read init_mm.pgd at %#x: %w", pgdAt, err)
			return false
		}
		slide := le.Uint64(buf) - l.topPgt
		if slide%slideStep != 0 || slide >= maxSlide {
			lastErr = fmt.Errorf("init_mm.pgd gives slide %#x: %w", slide, ErrNoInitTask)
			return false
		}
		cr3 := l.topPgt + delta
		for _, m := range modes {
			tr := paging.New(k.r, cr3, m)
			pa, err := tr.TranslateOne(l.initTask + slide)
			if err != nil || pa != taskPA {
				lastErr = fmt.Errorf("init_task at slide %#x does not map to %#x through cr3 %#x (%v): %w", slide, taskPA, cr3, err, ErrNoInitTask)
				continue
			}
			k.tr, k.slide, k.method = tr, slide, MethodScan
			k.physBase = delta - slide + profile.KernelMapBase
			return true
		}
		return false
	})
	if k.tr == nil {
		return lastErr
	}
	return nil
}

// Symbol returns the runtime virtual address of name.
func (k *Kernel) Symbol(name string) (uint64, error) {
	a, err := k.prof.Symbol(name)
	if err != nil {
		return 0, err
	}
	return k.runtime(a), nil
}

func (k *Kernel) runtime(link uint64) uint64 {
	if link >= profile.KernelMapBase {
		return link + k.slide
	}
	return link
}

// Lookup names the symbol containing runtime address addr.
func (k *Kernel) Lookup(addr uint64) (name string, off uint64, ok bool) {
	if addr >= profile.KernelMapBase+k.slide {
		addr -= k.slide
	}
	return k.prof.Lookup(addr)
}

// Offset returns the byte offset of member (dotted path) in typ.
func (k *Kernel) Offset(typ, member string) (uint64, error) { return k.prof.Offset(typ, member) }

// Size returns the size of typ in bytes.
func (k *Kernel) Size(typ string) (uint64, error) { return k.prof.Size(typ) }

// ReadVirt reads kernel virtual memory in one batch, per-range errors.
func (k *Kernel) ReadVirt(ranges []physmem.Range) error { return k.tr.ReadVirt(ranges) }

// TextRange returns the runtime [_stext, _etext).
func (k *Kernel) TextRange() (start, end uint64, err error) {
	s, err := k.Symbol("_stext")
	if err != nil {
		return 0, 0, err
	}
	e, err := k.Symbol("_etext")
	if err != nil {
		return 0, 0, err
	}
	return s, e, nil
}

// Slide is the virtual KASLR slide: runtime minus link address.
func (k *Kernel) Slide() uint64 { return k.slide }

// CR3 is the page-table base kernel reads walk from.
func (k *Kernel) CR3() uint64 { return k.tr.CR3() }

// PhysBase is the kernel's phys_base: physical = virtual -
// __START_KERNEL_map + PhysBase for image addresses, modulo 2^64 (it may be
// "negative").
func (k *Kernel) PhysBase() uint64 { return k.physBase }

// Method says how the slide was found.
func (k *Kernel) Method() Method { return k.method }

// Profile is the profile the kernel was bound with.
func (k *Kernel) Profile() *profile.Profile { return k.prof }

// Translator is the page-table walker reads go through.
func (k *Kernel) Translator() *paging.Translator { return k.tr }

// Reader is the guest physical memory.
func (k *Kernel) Reader() physmem.Reader { return k.r }

var _ linux.Target = (*Kernel)(nil)

// PagingLevels is 4 or 5, the depth of the page tables the kernel runs.
func (k *Kernel) PagingLevels() int { return int(k.tr.Mode()) }
