package profile

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// DefaultTextLink is the link address of _text on x86-64 kernels built with
// the default CONFIG_PHYSICAL_START (16 MiB), Debian's among them.
const DefaultTextLink = 0xffffffff81000000

// Window around a token-table candidate read to decode kallsyms: the names,
// markers and (up to 6.3) offsets lie before it, the 6.4+ offsets after.
const (
	kallsymsBefore = 24 << 20
	kallsymsAfter  = 4 << 20
)

// MemoryOptions tunes FromMemory.
type MemoryOptions struct {
	// TextLink is the link-time address of _text; 0 means DefaultTextLink.
	TextLink uint64
}

// MemoryInfo says where FromMemory found the kernel.
type MemoryInfo struct {
	// Slide is the virtual KASLR slide (runtime minus link address) that was
	// removed from the symbols found in memory.
	Slide uint64
	// TextPhys is the physical address of _text; the kernel image is
	// physically contiguous from there.
	TextPhys uint64
	// KallsymsPhys is the physical address of kallsyms_token_table.
	KallsymsPhys uint64
	// BTFPhys and BTFSize locate the vmlinux BTF blob.
	BTFPhys uint64
	BTFSize int
}

// FromMemory builds the profile of the kernel running in a guest from its
// physical memory alone: the kallsyms tables and the BTF blob are found by
// scanning, checked against each other (the BTF must sit where __start_BTF
// says, linux_banner where it says), and the symbols are brought back to
// link addresses. The result equals FromVmlinuz's on the same build.
func FromMemory(r physmem.Reader, opts MemoryOptions) (*Profile, MemoryInfo, error) {
	textLink := opts.TextLink
	if textLink == 0 {
		textLink = DefaultTextLink
	}
	hits := scanPhys(r, kallsymsDigits, btfMagic)
	var info MemoryInfo
	var ks *kallsymsTables
	var firstErr error
	for _, hit := range hits[0] {
		start := uint64(0)
		if hit > kallsymsBefore {
			start = (hit - kallsymsBefore) &^ 4095
		}
		end := min(hit+kallsymsAfter, r.Size())
		win := readPhysLenient(r, start, int(end-start))
		t, err := decodeKallsymsAt(win, int(hit-start))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ks, info.KallsymsPhys = t, start+uint64(t.tokenTable)
		break
	}
	if ks == nil {
		if firstErr == nil {
			firstErr = fmt.Errorf("no token table signature in %d bytes of memory: %w", r.Size(), ErrKallsyms)
		}
		return nil, info, firstErr
	}
	rt := make(map[string]uint64)
	for _, s := range ks.syms {
		if _, dup := rt[s.name]; !dup {
			rt[s.name] = s.addr
		}
	}
	text, okT := rt["_text"]
	startBTF, okB := rt["__start_BTF"]
	banner, okN := rt["linux_banner"]
	end, okE := rt["_end"]
	if !okT || !okB || !okN || !okE || startBTF < text || banner < text || end < text {
		return nil, info, fmt.Errorf("kallsyms in memory lack _text, _end, __start_BTF or linux_banner: %w", ErrNotKernel)
	}
	var raw []byte
	for _, h := range hits[1] {
		textPhys := h - (startBTF - text)
		if info.KallsymsPhys < textPhys || info.KallsymsPhys >= textPhys+(end-text) {
			continue
		}
		release := parseBanner(readPhysLenient(r, textPhys+(banner-text), 256))
		if release == "" {
			continue
		}
		hdr := readPhysLenient(r, h, btfHeaderLen)
		total := btfHeaderLen + int(le.Uint32(hdr[16:])) + int(le.Uint32(hdr[20:]))
		if total > maxBTF || h+uint64(total) > r.Size() {
			continue
		}
		blob := readPhysLenient(r, h, total)
		if _, err := btfBlobLen(blob); err != nil {
			continue
		}
		raw, info.TextPhys, info.BTFPhys, info.BTFSize = blob, textPhys, h, total
		break
	}
	if raw == nil {
		return nil, info, fmt.Errorf("no btf blob where __start_BTF points (%d headers in memory): %w", len(hits[1]), ErrBTF)
	}
	info.Slide = text - textLink
	syms := make([]kallsym, len(ks.syms))
	for i, s := range ks.syms {
		if s.addr >= KernelMapBase {
			s.addr -= info.Slide
		}
		syms[i] = s
	}
	release := parseBanner(readPhysLenient(r, info.TextPhys+(banner-text), 256))
	p, err := newProfile(release, syms, raw)
	if err != nil {
		return nil, info, err
	}
	return p, info, nil
}
