package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// The kallsyms tables (scripts/kallsyms.c) sit in .rodata, each label
// aligned to 8 bytes:
//
//	[kallsyms_offsets, kallsyms_relative_base]   (up to 6.3)
//	kallsyms_num_syms, kallsyms_names, kallsyms_markers,
//	[kallsyms_seqs_of_names]                     (6.2-6.3, 6.1 stable)
//	kallsyms_token_table, kallsyms_token_index
//	[kallsyms_offsets, kallsyms_relative_base]   (6.4+)
//
// They are found the way vmlinux-to-elf finds them: every character that
// occurs in a symbol name is its own one-character token, so the token
// table holds "0\x001\x00…9\x00" at indices 0x30..0x39. From there the
// token index (which must agree with the table), the markers (every 256th
// name's offset, searched for below the token table), the names and the
// addresses follow, each checked against the others. Offsets within the
// window b must have the alignment of the addresses they stand for (callers
// pass 8-aligned windows).

var kallsymsDigits = []byte("0\x001\x002\x003\x004\x005\x006\x007\x008\x009\x00")

// maxKallsymsNames bounds the search for kallsyms_num_syms before the names.
const maxKallsymsNames = 32 << 20

// KernelMapBase is the start of the kernel text mapping; symbols below it
// (per-CPU offsets) are absolute and never slid.
const KernelMapBase = 0xffffffff80000000

type kallsym struct {
	name string
	typ  byte
	addr uint64
}

type kallsymsTables struct {
	syms         []kallsym
	relativeBase uint64
	tokenTable   int // offset in the window of kallsyms_token_table
	baseAt       int // offset of kallsyms_relative_base, -1 if absolute
}

var le = binary.LittleEndian

// decodeKallsyms finds and decodes the kallsyms tables in b.
func decodeKallsyms(b []byte) (*kallsymsTables, error) {
	var firstErr error
	for off := 0; ; {
		i := bytes.Index(b[off:], kallsymsDigits)
		if i < 0 {
			break
		}
		off += i
		t, err := decodeKallsymsAt(b, off)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		off++
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("no token table signature in %d bytes: %w", len(b), ErrKallsyms)
}

// decodeKallsymsAt decodes the tables around a token-table digit run at hit.
func decodeKallsymsAt(b []byte, hit int) (*kallsymsTables, error) {
	fail := func(what string) error {
		return fmt.Errorf("token table candidate at %#x: %s: %w", hit, what, ErrKallsyms)
	}
	var rel [256]int // token starts relative to token '0' (index 0x30), for 0x30..0xff
	pos := hit
	for k := 0x30; k < 256; k++ {
		rel[k] = pos - hit
		j := bytes.IndexByte(b[pos:], 0)
		if j <= 0 {
			return nil, fail("empty or unterminated token")
		}
		pos += j + 1
	}
	tokEnd := pos
	tableStart, indexAt := -1, -1
	for ti := alignUp8(tokEnd); ti <= tokEnd+16 && ti+512 <= len(b); ti += 8 {
		base := int(le.Uint16(b[ti+2*0x30:]))
		if le.Uint16(b[ti:]) != 0 || base > hit {
			continue
		}
		ok := true
		for k := 0x31; k < 256 && ok; k++ {
			ok = int(le.Uint16(b[ti+2*k:]))-base == rel[k]
		}
		if ok {
			tableStart, indexAt = hit-base, ti
			break
		}
	}
	if tableStart < 0 {
		return nil, fail("no matching token index")
	}
	var tokens [256][]byte
	for k := 0; k < 256; k++ {
		s := tableStart + int(le.Uint16(b[indexAt+2*k:]))
		e := tokEnd
		if k < 255 {
			e = tableStart + int(le.Uint16(b[indexAt+2*k+2:]))
		}
		if e <= s+1 || e > len(b) || b[e-1] != 0 || bytes.IndexByte(b[s:e], 0) != e-s-1 {
			return nil, fail(fmt.Sprintf("token %d malformed", k))
		}
		tokens[k] = b[s : e-1]
	}
	var lastErr error
	for _, m := range findMarkers(b, tableStart) {
		t, err := decodeNamesAndAddrs(b, m, &tokens, indexAt+512)
		if err == nil {
			t.tokenTable = tableStart
			return t, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fail("no markers before the token table")
	}
	return nil, lastErr
}

type markersCandidate struct {
	start int
	vals  []uint64
}

// maxMarkersGap bounds how far before the token table the markers may
// end: 6.2+ kernels (and 6.1 stable updates) put kallsyms_seqs_of_names, 3
// bytes a symbol, in between.
const maxMarkersGap = 8 << 20

// findMarkers lists plausible kallsyms_markers arrays before the token
// table: 8-aligned, 0 first, then strictly increasing by less than 256
// maximal names each, as u32 (4.20+) or u64 (older kernels). Runs shorter
// than two entries are not considered (every real kernel has more than 256
// symbols).
func findMarkers(b []byte, tableStart int) []markersCandidate {
	var out []markersCandidate
	lo := tableStart - maxMarkersGap
	if lo < 0 {
		lo = 0
	}
	const maxStep = 256 * (1 + 0x7fff)
	for q := alignDown8(tableStart - 8); q >= lo; q -= 8 {
		for _, elem := range []int{4, 8} {
			get := func(p int) uint64 {
				if elem == 4 {
					return uint64(le.Uint32(b[p:]))
				}
				return le.Uint64(b[p:])
			}
			if q+2*elem > tableStart || get(q) != 0 {
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
			if len(vals) >= 2 {
				out = append(out, markersCandidate{start: q, vals: vals})
			}
		}
	}
	return out
}

// skipNames walks n length-prefixed names from start, checking every 256th
// against the markers, and returns the end offset.
func skipNames(b []byte, start, n int, markers []uint64) (int, bool) {
	p := start
	for i := 0; i < n; i++ {
		if i%256 == 0 && uint64(p-start) != markers[i/256] {
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

func decodeNamesAndAddrs(b []byte, m markersCandidate, tokens *[256][]byte, tokenIndexEnd int) (*kallsymsTables, error) {
	k := len(m.vals)
	lo := m.start - maxKallsymsNames
	if lo < 0 {
		lo = 0
	}
	for p := m.start - 8; p >= lo; p -= 8 {
		n := int(le.Uint32(b[p:]))
		need := (n + 255) / 256
		// the run may have picked up a few increasing words after the
		// markers' real end
		if n == 0 || need > k || need+4 < k || le.Uint32(b[p+4:]) != 0 {
			continue
		}
		end, ok := skipNames(b, p+8, n, m.vals[:need])
		if !ok || end > m.start || m.start-end >= 8 {
			continue
		}
		syms, err := expandNames(b, p+8, n, tokens)
		if err != nil {
			return nil, err
		}
		base, baseAt, err := readAddresses(b, p, n, tokenIndexEnd, syms)
		if err != nil {
			return nil, err
		}
		return &kallsymsTables{syms: syms, relativeBase: base, baseAt: baseAt}, nil
	}
	return nil, fmt.Errorf("no kallsyms_num_syms matching %d markers at %#x: %w", k, m.start, ErrKallsyms)
}

func expandNames(b []byte, start, n int, tokens *[256][]byte) ([]kallsym, error) {
	syms := make([]kallsym, n)
	var sb strings.Builder
	p := start
	for i := 0; i < n; i++ {
		l := int(b[p])
		p++
		if l&0x80 != 0 {
			l = l&0x7f | int(b[p])<<7
			p++
		}
		sb.Reset()
		for _, t := range b[p : p+l] {
			sb.Write(tokens[t])
		}
		p += l
		s := sb.String()
		if len(s) < 2 {
			return nil, fmt.Errorf("kallsyms name %d expands to %q: %w", i, s, ErrKallsyms)
		}
		syms[i] = kallsym{name: s[1:], typ: s[0]}
	}
	return syms, nil
}

// readAddresses fills in the symbol addresses from kallsyms_offsets and
// kallsyms_relative_base, placed before kallsyms_num_syms (numSyms) up to
// 6.3 or after the token index from 6.4; or from a plain kallsyms_addresses
// array on kernels without CONFIG_KALLSYMS_BASE_RELATIVE. It returns the
// relative base and its offset (0 and -1 for absolute addresses).
func readAddresses(b []byte, numSyms, n, tokenIndexEnd int, syms []kallsym) (uint64, int, error) {
	type layout struct{ offsets, base int }
	var cands []layout
	if o := alignDown8(numSyms - 8 - 4*n); o >= 0 {
		cands = append(cands, layout{o, numSyms - 8})
	}
	o := alignUp8(tokenIndexEnd)
	cands = append(cands, layout{o, alignUp8(o + 4*n)})
	for _, c := range cands {
		if c.offsets < 0 || c.base+8 > len(b) {
			continue
		}
		base := le.Uint64(b[c.base:])
		if base < 0xffff800000000000 {
			continue
		}
		if fillRelative(b[c.offsets:c.offsets+4*n], base, syms) {
			return base, c.base, nil
		}
	}
	if a := numSyms - 8*n; a >= 0 {
		if fillAbsolute(b[a:numSyms], syms) {
			return 0, -1, nil
		}
	}
	return 0, 0, fmt.Errorf("no sorted kallsyms addresses for %d names: %w", len(syms), ErrKallsyms)
}

func fillRelative(offs []byte, base uint64, syms []kallsym) bool {
	absPercpu := false
	for i := range syms {
		if int32(le.Uint32(offs[4*i:])) < 0 {
			absPercpu = true
			break
		}
	}
	var prev uint64
	for i := range syms {
		v := int32(le.Uint32(offs[4*i:]))
		var a uint64
		switch {
		case !absPercpu:
			a = base + uint64(uint32(v))
		case v >= 0:
			a = uint64(v)
		default:
			a = base - 1 - uint64(int64(v))
		}
		if a < prev {
			return false
		}
		prev = a
		syms[i].addr = a
	}
	return true
}

func fillAbsolute(addrs []byte, syms []kallsym) bool {
	var prev uint64
	for i := range syms {
		a := le.Uint64(addrs[8*i:])
		if a < prev {
			return false
		}
		prev = a
		syms[i].addr = a
	}
	return prev >= KernelMapBase
}

func alignDown8(x int) int {
	if x < 0 {
		return -1
	}
	return x &^ 7
}

func alignUp8(x int) int { return (x + 7) &^ 7 }
