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
	imageAlign     = 2 << 20
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
// physical memory alone: the kallsyms tables are found by scanning (the
// scan stops at the first that decodes), the image's physical placement by
// checking that the BTF header sits where __start_BTF says and the banner
// where linux_banner says, and the symbols are brought back to link
// addresses. The result equals FromVmlinuz's on the same build.
func FromMemory(r physmem.Reader, opts MemoryOptions) (*Profile, MemoryInfo, error) {
	textLink := opts.TextLink
	if textLink == 0 {
		textLink = DefaultTextLink
	}
	var info MemoryInfo
	var ks *kallsymsTables
	var firstErr error
	physmem.Scan(r, kallsymsDigits, func(hit uint64) bool {
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
			return true
		}
		ks, info.KallsymsPhys = t, start+uint64(t.tokenTable)
		return false
	})
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
	// The image is physically contiguous and loaded 2 MiB-aligned (x86-64's
	// CONFIG_PHYSICAL_ALIGN), so _text is at one of a few physical addresses
	// below the token table; the right one has the BTF header at
	// __start_BTF and the banner at linux_banner.
	var raw []byte
	release := ""
	for textPhys := info.KallsymsPhys &^ (imageAlign - 1); textPhys+(end-text) > info.KallsymsPhys; textPhys -= imageAlign {
		if release = parseBanner(readPhysLenient(r, textPhys+(banner-text), 256)); release == "" {
			if textPhys < imageAlign {
				break
			}
			continue
		}
		h := textPhys + (startBTF - text)
		hdr := readPhysLenient(r, h, btfHeaderLen)
		total := btfHeaderLen + int(le.Uint32(hdr[16:])) + int(le.Uint32(hdr[20:]))
		if total <= maxBTF && h+uint64(total) <= r.Size() {
			blob := readPhysLenient(r, h, total)
			if _, err := btfBlobLen(blob); err == nil {
				raw, info.TextPhys, info.BTFPhys, info.BTFSize = blob, textPhys, h, total
				break
			}
		}
		if textPhys < imageAlign {
			break
		}
	}
	if raw == nil {
		return nil, info, fmt.Errorf("no btf blob where __start_BTF points: %w", ErrBTF)
	}
	info.Slide = text - textLink
	syms := make([]kallsym, len(ks.syms))
	for i, s := range ks.syms {
		if s.addr >= KernelMapBase {
			s.addr -= info.Slide
		}
		syms[i] = s
	}
	p, err := newProfile(release, syms, raw)
	if err != nil {
		return nil, info, err
	}
	return p, info, nil
}
