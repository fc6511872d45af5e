package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"unsafe"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
)

// The kallsyms tables (scripts/kallsyms.c) sit in .rodata. Their order,
// alignment and address encoding changed over the kernel's history:
//
//	up to 6.3:  [addresses | offsets, relative_base] num_syms names markers
//	            [seqs_of_names (6.2, 6.1 stable)] token_table token_index
//	6.4 - 6.x:  num_syms names markers token_table token_index
//	            offsets relative_base seqs_of_names
//	7.x:        the same order, each label 4-byte aligned instead of 8, and
//	            no relative_base: each offset is a signed 32-bit distance
//	            from the offset's own address (as __ksymtab entries are)
//
// Addresses are one of: absolute (kallsyms_addresses, 8 bytes each; kernels
// without CONFIG_KALLSYMS_BASE_RELATIVE), base-relative (u32 offsets from
// kallsyms_relative_base), base-relative with absolute per-CPU symbols
// (non-negative offsets are absolute, negative ones count down from the
// base), or entry-relative (7.x).
//
// The tables are found the way vmlinux-to-elf finds them: every character
// that occurs in a symbol name is its own one-character token, so the
// token table holds "0\x001\x00…9\x00" at indices 0x30..0x39. From there
// the token index (which must agree with the table), the markers (every
// 256th name's offset, found below the token table), the names and the
// addresses follow, each checked against the others; a decode must then
// pass validate. Callers pass windows whose offset 0 is at least 8-aligned
// in the kernel's address space.

var kallsymsDigits = []byte("0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00")

// KernelMapBase is the start of the kernel text mapping; symbols below it
// (per-CPU offsets) are absolute and never slid.
const KernelMapBase = 0xffffffff80000000

// minKallsymsSyms is the fewest symbols a real kernel's kallsyms holds
// (text symbols alone number tens of thousands); fewer is a junk decode.
var minKallsymsSyms = 1000

// maxKernelImage bounds _end - _text.
const maxKernelImage = 1 << 30

// maxNameLen is KSYM_NAME_LEN (512) plus the type byte and a two-byte length.
const maxNameLen = 515

type addrKind int

const (
	addrAbsolute       addrKind = iota // kallsyms_addresses
	addrBaseRelative                   // u32 offsets from kallsyms_relative_base
	addrPercpuRelative                 // the same, per-CPU symbols absolute
	addrEntryRelative                  // s32 offsets from each entry (7.x)
)

func (k addrKind) String() string {
	return [...]string{"absolute", "base-relative", "base-relative with absolute per-cpu", "entry-relative"}[k]
}

type kallsymsTables struct {
	syms symbols
	kind addrKind
	// offsets in the window of each table; relativeBase and baseAt only
	// for the base-relative kinds (baseAt -1 otherwise)
	numSyms, names, markers, tokenTable, tokenIndex, addrs int
	relativeBase                                           uint64
	baseAt                                                 int
	// anchored is false for entry-relative addresses decoded without the
	// table's own virtual address: they are then off by one constant.
	anchored bool
	// textPhys is where _text lies physically when the tables' source
	// says so (VMCOREINFO's phys_base), 0 when unknown.
	textPhys uint64
}

var le = binary.LittleEndian

// unanchoredVA stands for the unknown address of an entry-relative table:
// far from both ends of the address space, so the ±2 GiB offsets neither
// wrap nor change order.
const unanchoredVA = 1 << 62

// vaFunc gives the virtual address of window offset off, if known.
type vaFunc func(off int) (uint64, bool)

// decodeKallsyms finds and decodes the kallsyms tables in b, whose offset
// 0 is at virtual address va (0 if unknown). Every rejected candidate is
// named in the error.
func decodeKallsyms(b []byte, va uint64) (*kallsymsTables, error) {
	at := func(off int) (uint64, bool) { return va + uint64(off), va != 0 }
	var rej rejections
	for off := 0; ; {
		i := bytes.Index(b[off:], kallsymsDigits)
		if i < 0 {
			break
		}
		off += i
		t, err := decodeKallsymsAt(b, off, at)
		if err == nil {
			return t, nil
		}
		rej.add(uint64(off), err)
		off++
	}
	return nil, rej.err(fmt.Sprintf("%d bytes", len(b)))
}

// decodeKallsymsAt decodes the tables around a token-table digit run at
// hit; the error says why this candidate is not kallsyms.
func decodeKallsymsAt(b []byte, hit int, va vaFunc) (*kallsymsTables, error) {
	var tokens [256][]byte
	tableStart, indexAt, err := findTokenTable(b, hit, &tokens)
	if err != nil {
		return nil, err
	}
	cands := findMarkers(b, tableStart)
	if len(cands) == 0 {
		return nil, fmt.Errorf("no kallsyms_markers before the token table at %#x", tableStart)
	}
	var firstErr error
	for _, m := range cands {
		t, err := decodeNamesAndAddrs(b, m, &tokens, indexAt+512, va)
		if err == nil {
			t.tokenTable, t.tokenIndex = tableStart, indexAt
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("%d markers candidates rejected, nearest: %w", len(cands), firstErr)
}

// tokenProbe bounds the bytes findTokenTable reads around hit: the
// token index holds u16 offsets, so the table lies within 64 KiB of it,
// and the 512-byte index follows the table 8-aligned.
const tokenProbe = 64<<10 + 1<<10

// findTokenTable finds the token table around the digit run at hit, and
// the token index that agrees with it, and cuts the 256 tokens.
func findTokenTable(b []byte, hit int, tokens *[256][]byte) (tableStart, indexAt int, err error) {
	var rel [256]int // token starts relative to token '0' (index 0x30), for 0x30..0xff
	pos := hit
	for k := 0x30; k < 256; k++ {
		rel[k] = pos - hit
		j := bytes.IndexByte(b[pos:], 0)
		if j <= 0 {
			return 0, 0, fmt.Errorf("token %#x empty or unterminated", k)
		}
		pos += j + 1
	}
	tokEnd := pos
	// The index follows the table at the next 4-byte (7.x) or 8-byte
	// boundary. A read a few bytes off can still agree on the tokens from
	// '0' up when they are all one character long, so each position must
	// also give a token 0 that starts the table.
	tableStart, indexAt = -1, -1
	for _, ti := range []int{(tokEnd + 3) &^ 3, (tokEnd + 7) &^ 7} {
		if ti+512 > len(b) || ti == indexAt {
			continue
		}
		base := int(le.Uint16(b[ti+2*0x30:]))
		if le.Uint16(b[ti:]) != 0 || base > hit || (hit-base)%4 != 0 {
			continue
		}
		ok := true
		for k := 0x31; k < 256 && ok; k++ {
			ok = int(le.Uint16(b[ti+2*k:]))-base == rel[k]
		}
		if ok && parseTokens(b, hit-base, ti, tokEnd, tokens) {
			tableStart, indexAt = hit-base, ti
			break
		}
	}
	if tableStart < 0 {
		return 0, 0, fmt.Errorf("no kallsyms_token_index agrees with the token table")
	}
	return tableStart, indexAt, nil
}

// parseTokens cuts the token table at tableStart by the index at indexAt:
// 256 non-empty NUL-terminated strings ending at tokEnd.
func parseTokens(b []byte, tableStart, indexAt, tokEnd int, tokens *[256][]byte) bool {
	for k := 0; k < 256; k++ {
		s := tableStart + int(le.Uint16(b[indexAt+2*k:]))
		e := tokEnd
		if k < 255 {
			e = tableStart + int(le.Uint16(b[indexAt+2*k+2:]))
		}
		if s < 0 || e <= s+1 || e > len(b) || b[e-1] != 0 || bytes.IndexByte(b[s:e], 0) != e-s-1 {
			return false
		}
		tokens[k] = b[s : e-1]
	}
	return true
}

type markersCandidate struct {
	start int
	vals  []uint64
}

// maxMarkersGap bounds how far before the token table the markers may
// end: 6.2-6.3 kernels (and 6.1 stable updates) put kallsyms_seqs_of_names,
// 3 bytes a symbol, in between.
const maxMarkersGap = 8 << 20

// findMarkers lists plausible kallsyms_markers arrays before the token
// table: 4-aligned, 0 first, then strictly increasing by less than 256
// maximal names each, as u32 (4.20+) or u64 (older kernels), ending within
// 8 bytes of the table or of the seqs before it. Runs shorter than four
// entries are not considered (a real kernel has thousands of symbols).
func findMarkers(b []byte, tableStart int) []markersCandidate {
	var out []markersCandidate
	lo := max(tableStart-maxMarkersGap, 0)
	const maxStep = 256 * maxNameLen
	for q := (tableStart - 8) &^ 3; q >= lo; q -= 4 {
		for _, elem := range []int{4, 8} {
			get := func(p int) uint64 {
				if elem == 4 {
					return uint64(le.Uint32(b[p:]))
				}
				return le.Uint64(b[p:])
			}
			if elem == 8 && q%8 != 0 || q+2*elem > tableStart || get(q) != 0 {
				continue
			}
			vals := []uint64{0}
			for p := q + elem; p+elem <= tableStart; p += elem {
				v := get(p)
				prev := vals[len(vals)-1]
				if v <= prev || v-prev > maxStep {
					break
				}
				vals = append(vals, v)
			}
			if len(vals) >= 4 {
				out = append(out, markersCandidate{start: q, vals: vals})
			}
		}
	}
	return out
}

// skipNames walks n length-prefixed names from start, checking every 256th
// against the markers (if any), and returns the end offset.
func skipNames(b []byte, start, n int, markers []uint64) (int, bool) {
	p := start
	for i := 0; i < n; i++ {
		if markers != nil && i%256 == 0 && uint64(p-start) != markers[i/256] {
			return 0, false
		}
		if p >= len(b) {
			return 0, false
		}
		l := int(b[p])
		p++
		if l&0x80 != 0 { // 6.1+: two-byte length for long (Rust) names
			if p >= len(b) {
				return 0, false
			}
			l = l&0x7f | int(b[p])<<7
			p++
		}
		if l == 0 {
			return 0, false
		}
		p += l
	}
	return p, p <= len(b)
}

// decodeNamesAndAddrs finds kallsyms_num_syms for markers m: the names it
// counts start 4 or 8 bytes after it (the label alignment of the era) and
// end just before the markers; the last marker bounds where it can be.
func decodeNamesAndAddrs(b []byte, m markersCandidate, tokens *[256][]byte, tokenIndexEnd int, va vaFunc) (*kallsymsTables, error) {
	k := len(m.vals)
	// The names end within 8 bytes of the markers and hold at least the
	// last marker's worth plus one name; the run may have picked up up to
	// four increasing words past the markers' real end.
	hi := m.start - int(m.vals[max(k-5, 0)]) - 4
	lo := max(m.start-int(m.vals[k-1])-8-256*maxNameLen, 0)
	var firstErr error
	for p := hi &^ 3; p >= lo; p -= 4 {
		n := int(le.Uint32(b[p:]))
		need := (n + 255) / 256
		// the run may have picked up a few increasing words after the
		// markers' real end
		if n < minKallsymsSyms || need > k || need+4 < k {
			continue
		}
		for _, gap := range []int{4, 8} {
			if gap == 8 && (p%8 != 0 || le.Uint32(b[p+4:]) != 0) {
				continue
			}
			end, ok := skipNames(b, p+gap, n, m.vals[:need])
			if !ok || end > m.start || m.start-end >= 8 {
				continue
			}
			t, err := decodeAt(b, p, p+gap, n, m.start, tokens, tokenIndexEnd, va)
			if err == nil {
				return t, nil
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("%d names at %#x: %w", n, p+gap, err)
			}
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("no kallsyms_num_syms matches %d markers at %#x", k, m.start)
}

func decodeAt(b []byte, numSyms, names, n, markers int, tokens *[256][]byte, tokenIndexEnd int, va vaFunc) (*kallsymsTables, error) {
	syms, err := expandNames(b, names, n, tokens)
	if err != nil {
		return nil, err
	}
	t := &kallsymsTables{syms: syms, numSyms: numSyms, names: names, markers: markers, baseAt: -1}
	if err := readAddresses(b, t, tokenIndexEnd, va); err != nil {
		return nil, err
	}
	return t, nil
}

// expandNames expands the n names at start. Every name is a slice of one
// string: a 7.x kernel has 200,000 symbols, and a string each was an
// allocation each, and as many pointers for the collector to follow. The
// names are checked and measured token by token first, so that string is
// allocated once and exactly, then written token by token (a token of up
// to 8 bytes as one word) in two halves side by side.
func expandNames(b []byte, start, n int, tokens *[256][]byte) (symbols, error) {
	var x nameExpander
	x.tokens = tokens
	// printable: every byte is; printableTail: every byte after the first
	var printable, printableTail [256]bool
	for i, t := range tokens {
		x.tokLen[i] = len(t)
		var w [8]byte
		copy(w[:], t)
		x.word[i] = le.Uint64(w[:])
		printableTail[i] = isPrintable(t[min(1, len(t)):])
		printable[i] = printableTail[i] && (len(t) == 0 || isPrintable(t[:1]))
	}
	half := n / 2
	var halfP, halfAt int // where name half starts, compressed and expanded
	size := 0
	for i, p := 0, start; i < n; i++ {
		if i == half {
			halfP, halfAt = p, size
		}
		l, q := nameLen(b, p)
		toks := b[q : q+l]
		first := tokens[toks[0]]
		ok := len(first) > 0 && isSymType(first[0]) && printableTail[toks[0]]
		nameSize := x.tokLen[toks[0]]
		for _, t := range toks[1:] {
			ok = ok && printable[t]
			nameSize += x.tokLen[t]
		}
		if !ok || nameSize < 2 || nameSize > maxNameLen {
			return symbols{}, badName(i, toks, tokens)
		}
		size += nameSize
		p = q + l
	}
	// Megabytes written once: faulted in by huge pages.
	x.buf = make([]byte, size+8) // the last word may write 7 bytes past the names
	hugemem.Advise(x.buf)
	x.ents = make([]symEnt, n)
	hugemem.Advise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(x.ents))), n*int(unsafe.Sizeof(symEnt{}))))
	var wg sync.WaitGroup
	wg.Go(func() { x.expand(b, halfP, halfAt, half, n, len(x.buf)) })
	x.expand(b, start, 0, 0, half, halfAt)
	wg.Wait()
	// buf is complete and never written again: the string shares it.
	return symbols{names: unsafe.String(unsafe.SliceData(x.buf), size), ents: x.ents}, nil
}

// nameExpander writes names expanded from their tokens, and their entries.
type nameExpander struct {
	tokens *[256][]byte
	tokLen [256]int
	word   [256]uint64 // the tokens of up to 8 bytes, little-endian
	buf    []byte
	ents   []symEnt
}

// expand writes names [from, to), the first at p in b and at in buf,
// writing no byte of buf at or past limit.
func (x *nameExpander) expand(b []byte, p, at, from, to, limit int) {
	for i := from; i < to; i++ {
		l, q := nameLen(b, p)
		name := at
		for _, t := range b[q : q+l] {
			if x.tokLen[t] <= 8 && at+8 <= limit {
				le.PutUint64(x.buf[at:], x.word[t])
			} else {
				copy(x.buf[at:], x.tokens[t])
			}
			at += x.tokLen[t]
		}
		// the name is what follows the type letter
		x.ents[i] = symEnt{off: uint32(name + 1), n: uint16(at - name - 1), typ: x.buf[name]}
		p = q + l
	}
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// badName says why the name made of toks is not a symbol's.
func badName(i int, toks []byte, tokens *[256][]byte) error {
	var name []byte
	for _, t := range toks {
		name = append(name, tokens[t]...)
	}
	if len(name) < 2 || !isSymType(name[0]) {
		return fmt.Errorf("name %d expands to %q, not a typed symbol name", i, name)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name %d expands to %d bytes, more than KSYM_NAME_LEN", i, len(name))
	}
	return fmt.Errorf("name %d expands to %q, not printable", i, name)
}

// nameLen reads the length prefix of the compressed name at p (one byte,
// or two with the high bit set on 6.1+ for long Rust names) and returns
// the length and where the name's token bytes start. Callers have checked
// the names with skipNames.
func nameLen(b []byte, p int) (int, int) {
	l := int(b[p])
	p++
	if l&0x80 != 0 {
		l = l&0x7f | int(b[p])<<7
		p++
	}
	return l, p
}

func isSymType(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '?' }

// readAddresses tries every address layout the kernel has used, placed
// where its era put it, and keeps the first that passes validate.
func readAddresses(b []byte, t *kallsymsTables, tokenIndexEnd int, va vaFunc) error {
	n := t.syms.len()
	type cand struct {
		kind  addrKind
		at    int
		base  int // relative_base offset, base-relative kinds
		where string
	}
	var cs []cand
	// up to 6.3: offsets, relative_base, num_syms (8-aligned labels)
	if o := (t.numSyms - 8 - 4*n) &^ 7; o >= 0 && (o+4*n+7)&^7 == t.numSyms-8 {
		cs = append(cs, cand{addrBaseRelative, o, t.numSyms - 8, "before kallsyms_num_syms"})
	}
	// 6.4+: offsets right after the token index, then relative_base
	after := []int{(tokenIndexEnd + 7) &^ 7}
	if a4 := (tokenIndexEnd + 3) &^ 3; a4 != after[0] {
		after = append([]int{a4}, after...)
	}
	for _, o := range after {
		cs = append(cs, cand{addrBaseRelative, o, (o + 4*n + 7) &^ 7, "after kallsyms_token_index"})
	}
	if a := t.numSyms - 8*n; a >= 0 && a%8 == 0 {
		cs = append(cs, cand{addrAbsolute, a, -1, "before kallsyms_num_syms"})
	}
	for _, o := range after {
		cs = append(cs, cand{addrEntryRelative, o, -1, "after kallsyms_token_index"})
	}
	for _, o := range []int{(t.numSyms - 4*n) &^ 3, (t.numSyms - 4*n) &^ 7} {
		if o >= 0 && t.numSyms-(o+4*n) < 8 {
			cs = append(cs, cand{addrEntryRelative, o, -1, "before kallsyms_num_syms"})
		}
	}
	var reasons []string
	for _, c := range cs {
		size := 4
		if c.kind == addrAbsolute {
			size = 8
		}
		if c.at < 0 || c.at+size*n > len(b) || c.base+8 > len(b) {
			continue
		}
		var err error
		t.kind, t.addrs, t.baseAt, t.relativeBase, t.anchored = c.kind, c.at, -1, 0, true
		switch c.kind {
		case addrAbsolute:
			err = fillAbsolute(b[c.at:c.at+8*n], t.syms)
		case addrBaseRelative:
			t.baseAt, t.relativeBase = c.base, le.Uint64(b[c.base:])
			if t.relativeBase < 0xffff800000000000 {
				err = fmt.Errorf("relative base %#x is not a kernel address", t.relativeBase)
				break
			}
			if fillRelative(b[c.at:c.at+4*n], t.relativeBase, t.syms.ents) {
				t.kind = addrPercpuRelative
			}
			err = checkSorted(t.syms)
		case addrEntryRelative:
			tableVA, known := va(c.at)
			if t.anchored = known; !known {
				tableVA = unanchoredVA
			}
			fillEntryRelative(b[c.at:c.at+4*n], tableVA, t.syms.ents)
			err = checkSorted(t.syms)
		}
		if err == nil {
			err = validate(t)
		}
		if err == nil {
			return nil
		}
		reasons = append(reasons, fmt.Sprintf("%s at %#x (%s): %v", c.kind, c.at, c.where, err))
	}
	return fmt.Errorf("no address table fits: %s", joinReasons(reasons))
}

// fillRelative decodes base-relative offsets; it reports whether the
// absolute per-CPU encoding is in use (some offset negative).
func fillRelative(offs []byte, base uint64, syms []symEnt) bool {
	absPercpu := false
	for i := range syms {
		if int32(le.Uint32(offs[4*i:])) < 0 {
			absPercpu = true
			break
		}
	}
	for i := range syms {
		v := int32(le.Uint32(offs[4*i:]))
		switch {
		case !absPercpu:
			syms[i].addr = base + uint64(uint32(v))
		case v >= 0:
			syms[i].addr = uint64(v)
		default:
			syms[i].addr = base - 1 - uint64(int64(v))
		}
	}
	return absPercpu
}

// fillEntryRelative decodes 7.x offsets: entry i at tableVA+4i holds the
// signed distance from itself to the symbol.
func fillEntryRelative(offs []byte, tableVA uint64, syms []symEnt) {
	for i := range syms {
		syms[i].addr = tableVA + uint64(4*i) + uint64(int64(int32(le.Uint32(offs[4*i:]))))
	}
}

func fillAbsolute(addrs []byte, syms symbols) error {
	for i := range syms.ents {
		syms.ents[i].addr = le.Uint64(addrs[8*i:])
	}
	return checkSorted(syms)
}

func checkSorted(syms symbols) error {
	for i := 1; i < len(syms.ents); i++ {
		if e := syms.ents[i]; e.addr < syms.ents[i-1].addr {
			return fmt.Errorf("addresses not sorted at symbol %d (%s %#x after %#x)", i, syms.name(e), e.addr, syms.ents[i-1].addr)
		}
	}
	return nil
}

// validate checks what every kernel's kallsyms satisfies: thousands of
// symbols (names checked printable by expandNames, addresses sorted by
// the fill), _text and _end present and ordered, the image under 1 GiB,
// and, once anchored, _text in the kernel mapping.
func validate(t *kallsymsTables) error {
	if t.syms.len() < minKallsymsSyms {
		return fmt.Errorf("%d symbols, a kernel has thousands", t.syms.len())
	}
	text, okT := t.syms.first("_text")
	end, okE := t.syms.first("_end")
	switch {
	case !okT || !okE:
		return fmt.Errorf("no _text or _end among %d symbols", t.syms.len())
	case end <= text || end-text > maxKernelImage:
		return fmt.Errorf("_text %#x and _end %#x do not bound a kernel image", text, end)
	case t.anchored && text < KernelMapBase:
		return fmt.Errorf("_text %#x is outside the kernel mapping", text)
	}
	return nil
}

// anchorAt shifts unanchored entry-relative addresses so that _text is at
// text; anchored tables are left alone.
func (t *kallsymsTables) anchorAt(text uint64) {
	if t.anchored {
		return
	}
	cur, _ := t.syms.first("_text")
	for i := range t.syms.ents {
		t.syms.ents[i].addr += text - cur
	}
	t.anchored = true
}
