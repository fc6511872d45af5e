package profile

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

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
	// Slide is the virtual KASLR slide (runtime minus link address) when
	// SlideKnown: from the base-relative kallsyms tables, which the kernel
	// relocates, or else from init_task.stack, a pointer into the image.
	Slide      uint64
	SlideKnown bool
	// TextPhys is the physical address of _text; the kernel image is
	// physically contiguous from there.
	TextPhys uint64
	// KallsymsPhys is the physical address of kallsyms_token_table.
	KallsymsPhys uint64
	// BTFPhys and BTFSize locate the vmlinux BTF blob.
	BTFPhys uint64
	BTFSize int
	// Source says how the kallsyms tables were found.
	Source KallsymsSource
}

// KallsymsSource is how FromMemory found the kallsyms tables.
type KallsymsSource string

const (
	// SourceVmcoreinfo: where the guest's VMCOREINFO says they are.
	SourceVmcoreinfo KallsymsSource = "vmcoreinfo"
	// SourceScan: by the token table's signature.
	SourceScan KallsymsSource = "scan"
)

// FromMemory builds the profile of the kernel running in a guest from its
// physical memory alone: the kallsyms tables are found in one scan, where
// the kernel's VMCOREINFO says they are or by their signature (the scan
// stops at the first candidate that decodes and validates; a failure names
// every candidate and why it was rejected), the image's physical placement by
// checking that the BTF header sits where __start_BTF says and the banner
// where linux_banner says, and the symbols are brought back to link
// addresses. The result equals FromVmlinuz's on the same build.
func FromMemory(r physmem.Reader, opts MemoryOptions) (*Profile, MemoryInfo, error) {
	textLink := opts.TextLink
	if textLink == 0 {
		textLink = DefaultTextLink
	}
	var info MemoryInfo
	// The BTF is guessed and parsed beside the kallsyms decode; the
	// guess reads r, so it ends before FromMemory returns.
	var early *btfAhead
	defer func() {
		if early != nil {
			<-early.done
		}
	}()
	ks, err := scanKallsyms(r, textLink, &info, func(tokPhys uint64) {
		if early == nil {
			early = startBTFAhead(r, tokPhys)
		}
	})
	if err != nil {
		return nil, info, err
	}
	anchored := ks.anchored
	ks.anchorAt(textLink)
	rt := firstAddrs(ks.syms, "_text", "__start_BTF", "linux_banner", "_end")
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
	// __start_BTF and the banner at linux_banner. Where VMCOREINFO stated
	// it, that one is checked first: each candidate costs a read of memory
	// that is otherwise never read.
	release := ""
	place := func(textPhys uint64) bool {
		if release = parseBanner(readPhysLenient(r, textPhys+(banner-text), 256)); release == "" {
			return false
		}
		h := textPhys + (startBTF - text)
		hdr := readPhysLenient(r, h, btfHeaderLen)
		total := btfHeaderLen + int(le.Uint32(hdr[16:])) + int(le.Uint32(hdr[20:]))
		if total > maxBTF || h+uint64(total) > r.Size() {
			return false
		}
		err := withPhys(r, h, total, func(blob []byte) error {
			_, err := btfBlobLen(blob)
			return err
		})
		if err != nil {
			return false
		}
		info.TextPhys, info.BTFPhys, info.BTFSize = textPhys, h, total
		return true
	}
	found := ks.textPhys != 0 && ks.textPhys+(end-text) <= r.Size() && place(ks.textPhys)
	for textPhys := info.KallsymsPhys &^ (imageAlign - 1); !found && textPhys+(end-text) > info.KallsymsPhys; textPhys -= imageAlign {
		if found = place(textPhys); found || textPhys < imageAlign {
			break
		}
	}
	if !found {
		return nil, info, fmt.Errorf("no btf blob where __start_BTF points: %w", ErrBTF)
	}
	if anchored && !info.SlideKnown {
		info.Slide, info.SlideKnown = text-textLink, true
	}
	syms := ks.syms // link addresses from here on, in place
	for i := range syms.ents {
		if syms.ents[i].addr >= KernelMapBase {
			syms.ents[i].addr -= info.Slide
		}
	}
	// The ksymtab check reads guest memory, the profile parses BTF: neither
	// needs the other, so they run side by side.
	byName := newSymIndex(syms)
	parse := func() (ty *types, sum [sha256.Size]byte, err error) {
		if early != nil {
			if ty, sum, ok := early.at(info.BTFPhys, info.BTFSize); ok {
				return ty, sum, nil
			}
		}
		// parsed where it lies: the parser keeps its own copy
		err = withPhys(r, info.BTFPhys, info.BTFSize, func(raw []byte) (err error) {
			ty, sum, err = parseBTF(raw)
			return err
		})
		return ty, sum, err
	}
	p, err := newProfile(release, syms, byName, parse, func() error { return checkKsymtabInMemory(r, info.TextPhys, byName) })
	if err != nil {
		return nil, info, err
	}
	if !info.SlideKnown {
		info.Slide, info.SlideKnown = slideFromInitTask(r, p, info.TextPhys, textLink)
	}
	return p, info, nil
}

// scanKallsyms decodes the first kallsyms tables found in one pass over
// physical memory: where the kernel's VMCOREINFO says they are, or a token
// table found by its signature. A scan window has no known virtual
// address, so 7.x's entry-relative addresses found that way come back
// unanchored; VMCOREINFO's come with their addresses and the slide.
func scanKallsyms(r physmem.Reader, textLink uint64, info *MemoryInfo, found func(tokPhys uint64)) (*kallsymsTables, error) {
	var ks *kallsymsTables
	var rej rejections
	unknownVA := func(int) (uint64, bool) { return 0, false }
	seen := map[string]bool{}
	scanPatterns(r, [][]byte{vmcoreinfoKallsyms, kallsymsDigits}, func(i int, hit uint64) bool {
		if i == 0 {
			v := readVmcoreinfo(r, hit)
			key := v["SYMBOL(kallsyms_token_table)"] + "/" + v["NUMBER(phys_base)"]
			if seen[key] { // the note repeats the data page
				return true
			}
			seen[key] = true
			if tok, ok := v.physOf("kallsyms_token_table"); ok {
				found(tok)
			}
			t, tokPhys, slide, err := kallsymsFromVmcoreinfo(r, v, textLink)
			if err != nil {
				rej.addf("vmcoreinfo at %#x: %v", hit, err)
				return true
			}
			ks, info.KallsymsPhys, info.Slide, info.SlideKnown, info.Source = t, tokPhys, slide, true, SourceVmcoreinfo
			return false
		}
		// Most digit runs are not a token table (firmware tables, text):
		// the table and its index are checked in the 130 KiB around the
		// hit before the tables' 28 MiB window is read.
		var tokens [256][]byte
		ps := (hit - min(hit, tokenProbe)) &^ 4095
		probe := readPhysLenient(r, ps, int(min(hit+tokenProbe, r.Size())-ps))
		if _, _, err := findTokenTable(probe, int(hit-ps), &tokens); err != nil {
			rej.add(hit, err)
			return true
		}
		found(hit)
		start := uint64(0)
		if hit > kallsymsBefore {
			start = (hit - kallsymsBefore) &^ 4095
		}
		end := min(hit+kallsymsAfter, r.Size())
		var t *kallsymsTables
		err := withPhys(r, start, int(end-start), func(win []byte) (err error) {
			t, err = decodeKallsymsAt(win, int(hit-start), unknownVA)
			return err
		})
		if err != nil {
			rej.add(hit, err)
			return true
		}
		ks, info.KallsymsPhys, info.Source = t, start+uint64(t.tokenTable), SourceScan
		return false
	})
	if ks == nil {
		return nil, rej.err(fmt.Sprintf("%d bytes of memory", r.Size()))
	}
	return ks, nil
}

// slideFromInitTask reads init_task.stack, which holds the runtime address
// of init_stack, a symbol in the image.
func slideFromInitTask(r physmem.Reader, p *Profile, textPhys, textLink uint64) (uint64, bool) {
	task, err1 := p.Symbol("init_task")
	stack, err2 := p.Symbol("init_stack")
	off, err3 := p.Offset("task_struct", "stack")
	if err1 != nil || err2 != nil || err3 != nil || task < textLink {
		return 0, false
	}
	v := le.Uint64(readPhysLenient(r, textPhys+(task-textLink)+off, 8))
	slide := v - stack
	if slide%imageAlign != 0 || slide >= maxKernelImage {
		return 0, false
	}
	return slide, true
}

// checkKsymtabInMemory cross-checks the decoded symbols (link addresses)
// with the kernel's own export table in the image at textPhys, as
// FromVmlinux does with the file's: __ksymtab (and, before 6.x merged it,
// __ksymtab_gpl) entries are PREL32 {value, name, namespace} offsets,
// position-independent, so link addresses work. Kernels whose kallsyms
// lack the section bounds are not checked.
func checkKsymtabInMemory(r physmem.Reader, textPhys uint64, byName *symIndex) error {
	at := func(name string) uint64 { a, _ := byName.first(name); return a }
	text := at("_text")
	phys := func(va uint64) uint64 { return textPhys + va - text }
	type entry struct{ val, name uint64 }
	var ents []entry
	// Both tables and the names are read where they lie (when r lends them).
	for _, sec := range []string{"__ksymtab", "__ksymtab_gpl"} {
		start, stop := at("__start_"+sec), at("__stop_"+sec)
		if start == 0 || stop <= start || stop-start > 16<<20 {
			continue
		}
		ents = slices.Grow(ents, int(stop-start)/12)
		before := len(ents)
		_ = withPhys(r, phys(start), int(stop-start), func(d []byte) error {
			ents = ents[:before]
			for i := 0; i+12 <= len(d); i += 12 {
				ent := start + uint64(i)
				ents = append(ents, entry{ent + uint64(int64(int32(le.Uint32(d[i:])))), ent + 4 + uint64(int64(int32(le.Uint32(d[i+4:]))))})
			}
			return nil
		})
	}
	if len(ents) == 0 {
		return nil
	}
	lo, hi := ^uint64(0), uint64(0)
	for _, e := range ents {
		lo, hi = min(lo, e.name), max(hi, e.name)
	}
	// the names sit together in __ksymtab_strings
	if hi-lo > 16<<20 || lo < text {
		return fmt.Errorf("__ksymtab names spread over %#x-%#x: %w", lo, hi, ErrMismatch)
	}
	// Each name is looked up where it lies: a map of the 30,000 names
	// (a string each) cost more than the lookups. A kernel exports a name
	// once (modpost refuses a second), so each entry is one name.
	var t ksymtabTally
	_ = withPhys(r, phys(lo), int(hi-lo)+ksymNameMax, func(strs []byte) error {
		t = ksymtabTally{}
		for _, e := range ents {
			n := strs[e.name-lo:]
			if j := bytes.IndexByte(n, 0); j > 0 {
				t.add(byName.hasAt(n[:j], e.val))
			}
		}
		return nil
	})
	return t.err()
}

// ksymNameMax is KSYM_NAME_LEN, the longest symbol name.
const ksymNameMax = 512

// firstAddrs is the first address of each of names in syms, in one pass: a
// map of all of a kernel's 200,000 symbols costs more than the lookups.
func firstAddrs(syms symbols, names ...string) map[string]uint64 {
	at := make(map[string]uint64, len(names))
	for _, e := range syms.ents {
		if n := syms.name(e); slices.Contains(names, n) {
			if _, seen := at[n]; !seen {
				at[n] = e.addr
			}
		}
	}
	return at
}
