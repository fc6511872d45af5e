package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// kallsymsEra is one of the table layouts of scripts/kallsyms.c.
type kallsymsEra struct {
	name   string
	align  int      // label alignment
	kind   addrKind // address encoding
	before bool     // addresses before kallsyms_num_syms (up to 6.3)
	seqs   bool     // kallsyms_seqs_of_names between markers and token table
}

var kallsymsEras = []kallsymsEra{
	{"6.1-stable", 8, addrPercpuRelative, true, true},
	{"5.x", 8, addrPercpuRelative, true, false},
	{"6.4-6.x", 8, addrPercpuRelative, false, false},
	{"6.x-no-percpu", 8, addrBaseRelative, false, false},
	{"absolute", 8, addrAbsolute, true, false},
	{"7.x", 4, addrEntryRelative, false, false},
}

// encodeKallsyms lays out kallsyms tables the way scripts/kallsyms.c does
// in era e, starting lead bytes into a window whose offset 0 is at virtual
// address va (entry-relative offsets depend on it). Every byte value is
// its own token except 0, which stands for "__", so names compress a
// little and the decoder's expansion is exercised. Symbols must be sorted
// by address; with absolute per-CPU symbols, those below base are per-CPU.
func encodeKallsyms(syms []kallsym, base uint64, e kallsymsEra, lead int, va uint64) []byte {
	b := make([]byte, lead)
	align := func() {
		for len(b)%e.align != 0 {
			b = append(b, 0)
		}
	}
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	addrs := func() {
		align()
		if e.kind == addrAbsolute {
			for _, s := range syms {
				b = binary.LittleEndian.AppendUint64(b, s.addr)
			}
			return
		}
		for _, s := range syms {
			switch e.kind {
			case addrEntryRelative:
				u32(uint32(int32(int64(s.addr - (va + uint64(len(b)))))))
			case addrBaseRelative:
				u32(uint32(s.addr - base))
			default:
				if s.addr < base {
					u32(uint32(s.addr))
				} else {
					u32(uint32(int32(-1 - int64(s.addr-base))))
				}
			}
		}
		if e.kind != addrEntryRelative {
			align()
			b = binary.LittleEndian.AppendUint64(b, base)
		}
	}
	if e.before {
		addrs()
	}
	align()
	u32(uint32(len(syms)))
	align()
	names := len(b)
	var markers []uint32
	for i, s := range syms {
		if i%256 == 0 {
			markers = append(markers, uint32(len(b)-names))
		}
		full := string(s.typ) + s.name
		var enc []byte
		for j := 0; j < len(full); j++ {
			if j+1 < len(full) && full[j] == '_' && full[j+1] == '_' {
				enc = append(enc, 0)
				j++
				continue
			}
			enc = append(enc, full[j])
		}
		if len(enc) > 127 {
			b = append(b, byte(len(enc)&0x7f|0x80), byte(len(enc)>>7))
		} else {
			b = append(b, byte(len(enc)))
		}
		b = append(b, enc...)
	}
	align()
	for _, m := range markers {
		u32(m)
	}
	align()
	if e.seqs {
		for i := range syms {
			b = append(b, byte(i>>16), byte(i>>8), byte(i))
		}
		align()
	}
	table := len(b)
	var index [256]uint16
	for k := 0; k < 256; k++ {
		index[k] = uint16(len(b) - table)
		if k == 0 {
			b = append(b, '_', '_')
		} else {
			b = append(b, byte(k))
		}
		b = append(b, 0)
	}
	align()
	for _, v := range index {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	if !e.before {
		addrs()
	}
	return append(b, make([]byte, 64)...)
}

const synthText = 0xffffffff81000000

// syntheticSyms returns n sorted symbols from _text to _end, with two
// per-CPU symbols first when percpu is set.
func syntheticSyms(n int, percpu bool) []kallsym {
	var syms []kallsym
	if percpu {
		syms = append(syms, kallsym{"fixed_percpu_data", 'D', 0}, kallsym{"current_task", 'D', 0x1fb80})
	}
	syms = append(syms, kallsym{"_text", 'T', synthText})
	for i := 0; len(syms) < n-1; i++ {
		name := fmt.Sprintf("__sym_%d_x", i)
		if i == 7 {
			name = fmt.Sprintf("long_%0150d", 7) // two-byte length
		}
		syms = append(syms, kallsym{name, "Ttd"[i%3], synthText + 0x1000 + uint64(i)*16})
	}
	return append(syms, kallsym{"_end", 'B', synthText + 0x2000000})
}

// synthVA is where the synthetic windows sit in the kernel's address space.
const synthVA = 0xffffffff82200000

func encodeEra(e kallsymsEra, n, lead int) ([]kallsym, []byte) {
	syms := syntheticSyms(n, e.kind == addrPercpuRelative)
	return syms, encodeKallsyms(syms, synthText, e, lead, synthVA)
}

func sameSyms(t *testing.T, got symbols, want []kallsym) {
	t.Helper()
	if got.len() != len(want) {
		t.Fatalf("%d symbols, want %d", got.len(), len(want))
	}
	for i := range want {
		if got.at(i) != want[i] {
			t.Fatalf("symbol %d = %+v, want %+v", i, got.at(i), want[i])
		}
	}
}

func TestDecodeKallsymsEveryEra(t *testing.T) {
	for _, e := range kallsymsEras {
		t.Run(e.name, func(t *testing.T) {
			want, b := encodeEra(e, 1500, 40)
			got, err := decodeKallsyms(b, synthVA)
			if err != nil {
				t.Fatal(err)
			}
			if got.kind != e.kind || !got.anchored {
				t.Errorf("decoded as %v (anchored %v), want %v", got.kind, got.anchored, e.kind)
			}
			sameSyms(t, got.syms, want)
			if e.kind == addrBaseRelative || e.kind == addrPercpuRelative {
				if got.relativeBase != synthText || le.Uint64(b[got.baseAt:]) != got.relativeBase {
					t.Errorf("relative base %#x at %d", got.relativeBase, got.baseAt)
				}
			}
			// without the window's address, entry-relative tables decode
			// unanchored and anchorAt puts them back
			got, err = decodeKallsyms(b, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got.anchored != (e.kind != addrEntryRelative) {
				t.Errorf("anchored %v without a virtual address", got.anchored)
			}
			got.anchorAt(synthText)
			sameSyms(t, got.syms, want)
		})
	}
}

// TestDecodeKallsymsRejectsCorruption: a damaged table is never accepted,
// whatever the era, and the error names the candidate and the reason.
func TestDecodeKallsymsRejectsCorruption(t *testing.T) {
	for _, e := range kallsymsEras {
		t.Run(e.name, func(t *testing.T) {
			_, b := encodeEra(e, 1200, 0)
			tab, err := decodeKallsyms(b, synthVA)
			if err != nil {
				t.Fatal(err)
			}
			n := tab.syms.len()
			cases := map[string]func(bad []byte){
				// a name length that no longer agrees with the markers
				"name length": func(bad []byte) { bad[tab.names]++ },
				"marker":      func(bad []byte) { le.PutUint32(bad[tab.markers+4:], le.Uint32(bad[tab.markers+4:])+1) },
				"token index": func(bad []byte) { le.PutUint16(bad[tab.tokenIndex+2*0x41:], 3) },
				"token table": func(bad []byte) { bad[tab.tokenTable+int(le.Uint16(bad[tab.tokenIndex+2*0x41:]))] = 0 },
				// two addresses swapped: no longer sorted
				"addresses": func(bad []byte) {
					w := 4
					if e.kind == addrAbsolute {
						w = 8
					}
					i, j := tab.addrs+w*(n/2), tab.addrs+w*(n/2+1)
					x := append([]byte(nil), bad[i:i+w]...)
					copy(bad[i:i+w], bad[j:j+w])
					copy(bad[j:j+w], x)
				},
				// a name that is not printable
				"name bytes": func(bad []byte) { bad[tab.names+2] = 0x01 },
			}
			for what, mut := range cases {
				bad := append([]byte(nil), b...)
				mut(bad)
				got, err := decodeKallsyms(bad, synthVA)
				if err == nil {
					t.Errorf("%s corrupted: accepted %d symbols", what, got.syms.len())
					continue
				}
				if !errors.Is(err, ErrKallsyms) || !strings.Contains(err.Error(), "candidate at") {
					t.Errorf("%s corrupted: err = %v", what, err)
				}
			}
		})
	}
	if _, err := decodeKallsyms(make([]byte, 4096), 0); !errors.Is(err, ErrKallsyms) {
		t.Errorf("zeros: err = %v, want ErrKallsyms", err)
	}
}

// TestDecodeKallsymsSkipsJunk: a well-formed but tiny table (the junk
// 3-symbol decode seen on a real kernel) and one without _text are
// rejected, the real table after them is found, and when it is missing
// the error names every candidate with its reason.
func TestDecodeKallsymsSkipsJunk(t *testing.T) {
	e := kallsymsEras[len(kallsymsEras)-1]
	minSyms := minKallsymsSyms
	t.Cleanup(func() { minKallsymsSyms = minSyms })
	minKallsymsSyms = 3
	tiny := encodeKallsyms(syntheticSyms(3, false), synthText, e, 0, synthVA)
	minKallsymsSyms = minSyms
	noText := syntheticSyms(1100, false)
	noText[0].name = "_stext"
	junk2 := encodeKallsyms(noText, synthText, e, 0, synthVA+uint64(len(tiny)))
	junk := append(tiny, junk2...)
	if _, err := decodeKallsyms(junk, synthVA); err == nil {
		t.Fatal("junk tables accepted")
	} else if msg := err.Error(); !strings.Contains(msg, "2 candidates") ||
		!strings.Contains(msg, "no kallsyms_markers") || !strings.Contains(msg, "no _text or _end") {
		t.Errorf("error does not name both candidates and their reasons: %v", err)
	}
	want := encodeKallsyms(syntheticSyms(1500, false), synthText, e, 0, synthVA+uint64(len(junk)))
	all := append(append([]byte(nil), junk...), want...)
	got, err := decodeKallsyms(all, synthVA)
	if err != nil {
		t.Fatal(err)
	}
	sameSyms(t, got.syms, syntheticSyms(1500, false))
}

func FuzzDecodeKallsyms(f *testing.F) {
	for _, e := range kallsymsEras {
		_, b := encodeEra(e, 1100, 0)
		f.Add(b)
	}
	f.Add(kallsymsDigits)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := decodeKallsyms(b, synthVA)
		if err == nil && tab.syms.len() < minKallsymsSyms {
			t.Fatalf("accepted %d symbols", tab.syms.len())
		}
	})
}
