package profile

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// VMCOREINFO is the text the kernel writes about itself for crash dump
// tools (kernel/vmcore_info.c): "KEY=VALUE" lines in a page of its own and
// in the ELF note that copies it. Since Linux 6.0 it names the kallsyms
// tables (SYMBOL(kallsyms_names)=… and the others, runtime addresses), and
// on x86-64 it gives NUMBER(phys_base) and KERNELOFFSET, so the tables can
// be read where the kernel says they are, in the layout its keys imply:
// kallsyms_addresses (absolute), kallsyms_relative_base (base-relative) or
// neither (7.x, entry-relative).

// vmcoreinfoKallsyms starts the line that every VMCOREINFO naming the
// kallsyms tables has; the string is built at run time, so the kernel
// image itself never holds it.
var vmcoreinfoKallsyms = []byte("SYMBOL(kallsyms_names)=")

type vmcoreinfo map[string]string

// readVmcoreinfo parses the VMCOREINFO text around the physical address
// hit: the run of printable lines between the NULs that bound it.
func readVmcoreinfo(r physmem.Reader, hit uint64) vmcoreinfo {
	const span = 8 << 10
	start := hit - min(hit, span/2)
	b := readPhysLenient(r, start, int(min(span, r.Size()-start)))
	at := int(hit - start)
	lo := bytes.LastIndexByte(b[:at], 0) + 1
	hi := bytes.IndexByte(b[at:], 0)
	if hi < 0 {
		hi = len(b) - at
	}
	v := vmcoreinfo{}
	for _, line := range strings.Split(string(b[lo:at+hi]), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok && k != "" {
			if _, dup := v[k]; !dup {
				v[k] = val
			}
		}
	}
	return v
}

func (v vmcoreinfo) symbol(name string) (uint64, bool) {
	x, err := strconv.ParseUint(v["SYMBOL("+name+")"], 16, 64)
	return x, err == nil
}

// physBase is where the kernel image's link address KernelMapBase lies
// in physical memory (NUMBER(phys_base), signed decimal).
func (v vmcoreinfo) physBase() (uint64, bool) {
	b, err := strconv.ParseInt(v["NUMBER(phys_base)"], 10, 64)
	return uint64(b), err == nil
}

// physOf is the physical address of the kernel image symbol name.
func (v vmcoreinfo) physOf(name string) (uint64, bool) {
	a, ok := v.symbol(name)
	base, okB := v.physBase()
	if !ok || !okB || a < KernelMapBase {
		return 0, false
	}
	return a - KernelMapBase + base, true
}

// kallsymsFromVmcoreinfo decodes the kallsyms tables where VMCOREINFO puts
// them. It returns the tables (anchored: runtime addresses), the physical
// address of the token table and the KASLR slide.
func kallsymsFromVmcoreinfo(r physmem.Reader, v vmcoreinfo, textLink uint64) (*kallsymsTables, uint64, uint64, error) {
	var va [5]uint64
	for i, name := range []string{"kallsyms_num_syms", "kallsyms_names", "kallsyms_token_table", "kallsyms_token_index"} {
		a, ok := v.symbol(name)
		if !ok {
			return nil, 0, 0, fmt.Errorf("vmcoreinfo lacks %s", name)
		}
		va[i] = a
	}
	kind := addrEntryRelative
	addrsVA, okO := v.symbol("kallsyms_offsets")
	baseVA, okB := v.symbol("kallsyms_relative_base")
	if a, ok := v.symbol("kallsyms_addresses"); ok {
		addrsVA, okO, kind = a, true, addrAbsolute
	} else if okB {
		kind = addrBaseRelative
	}
	if !okO {
		return nil, 0, 0, fmt.Errorf("vmcoreinfo names no kallsyms address table")
	}
	va[4] = addrsVA
	physBase, ok := v.physBase()
	if !ok {
		return nil, 0, 0, fmt.Errorf("vmcoreinfo without NUMBER(phys_base)")
	}
	slide, err := strconv.ParseUint(v["KERNELOFFSET"], 16, 64)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("vmcoreinfo without KERNELOFFSET")
	}
	pa := func(a uint64) uint64 { return a - KernelMapBase + physBase }
	if va[0] < KernelMapBase || pa(va[0])+4 > r.Size() {
		return nil, 0, 0, fmt.Errorf("kallsyms_num_syms at %#x is outside memory", va[0])
	}
	n := int(le.Uint32(readPhysLenient(r, pa(va[0]), 4)))
	if n < minKallsymsSyms || n > 1<<22 {
		return nil, 0, 0, fmt.Errorf("kallsyms_num_syms says %d symbols", n)
	}
	width := uint64(4)
	if kind == addrAbsolute {
		width = 8
	}
	lo, hi := va[0], va[3]+512
	for _, a := range va {
		lo = min(lo, a)
	}
	hi = max(hi, addrsVA+width*uint64(n))
	if okB {
		lo, hi = min(lo, baseVA), max(hi, baseVA+8)
	}
	lo &^= 7
	if hi-lo > kallsymsBefore+kallsymsAfter || pa(hi) > r.Size() || pa(lo) > pa(hi) {
		return nil, 0, 0, fmt.Errorf("kallsyms tables %#x-%#x do not fit in memory", lo, hi)
	}
	// The tables are decoded where they lie (when r lends them).
	t := new(kallsymsTables)
	err = withPhys(r, pa(lo), int(hi-lo), func(win []byte) error {
		*t = kallsymsTables{markers: -1, baseAt: -1, kind: kind, anchored: true}
		return decodeVmcoreinfoTables(win, t, lo, va, baseVA, n)
	})
	if err != nil {
		return nil, 0, 0, err
	}
	text, _ := t.syms.first("_text")
	if text-slide != textLink {
		return nil, 0, 0, fmt.Errorf("_text %#x disagrees with KERNELOFFSET %#x", text, slide)
	}
	t.textPhys = pa(text)
	return t, pa(va[2]), slide, nil
}

// decodeVmcoreinfoTables decodes the n symbols of the tables that
// VMCOREINFO places in win, which starts at virtual address lo; va holds
// kallsyms_num_syms, _names, _token_table, _token_index and the address
// table, baseVA kallsyms_relative_base (base-relative kinds).
func decodeVmcoreinfoTables(win []byte, t *kallsymsTables, lo uint64, va [5]uint64, baseVA uint64, n int) error {
	off := func(a uint64) int { return int(a - lo) }
	t.numSyms, t.names, t.tokenTable, t.tokenIndex, t.addrs = off(va[0]), off(va[1]), off(va[2]), off(va[3]), off(va[4])
	var tokens [256][]byte
	last := t.tokenTable + int(le.Uint16(win[t.tokenIndex+2*255:]))
	if last >= len(win) || bytes.IndexByte(win[last:], 0) < 0 {
		return fmt.Errorf("token table at %#x unterminated", va[2])
	}
	tokEnd := last + bytes.IndexByte(win[last:], 0) + 1
	if !parseTokens(win, t.tokenTable, t.tokenIndex, tokEnd, &tokens) {
		return fmt.Errorf("token table at %#x disagrees with its index", va[2])
	}
	if _, ok := skipNames(win, t.names, n, nil); !ok {
		return fmt.Errorf("%d names at %#x run past the tables", n, va[1])
	}
	var err error
	if t.syms, err = expandNames(win, t.names, n, &tokens); err != nil {
		return err
	}
	width := 4
	if t.kind == addrAbsolute {
		width = 8
	}
	as := win[t.addrs : t.addrs+width*n]
	switch t.kind {
	case addrAbsolute:
		err = fillAbsolute(as, t.syms)
	case addrBaseRelative:
		t.baseAt = off(baseVA)
		t.relativeBase = le.Uint64(win[t.baseAt:])
		if fillRelative(as, t.relativeBase, t.syms.ents) {
			t.kind = addrPercpuRelative
		}
		err = checkSorted(t.syms)
	default:
		fillEntryRelative(as, va[4], t.syms.ents)
		err = checkSorted(t.syms)
	}
	if err == nil {
		err = validate(t)
	}
	if err != nil {
		return fmt.Errorf("%s tables at %#x: %w", t.kind, va[2], err)
	}
	return nil
}
