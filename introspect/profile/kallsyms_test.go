package profile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// encodeKallsyms lays out kallsyms tables the way scripts/kallsyms.c does
// for a base-relative, absolute-percpu kernel (6.1 stable layout, with
// kallsyms_seqs_of_names when seqs is set): offsets, relative_base,
// num_syms, names, markers, [seqs], token_table, token_index. Every byte
// value is its own token except 0, which stands for "__", so names
// compress a little and the decoder's expansion is exercised. Symbols must
// be sorted by address; addresses below base are per-CPU (absolute).
func encodeKallsyms(syms []kallsym, base uint64, seqs bool, lead int) []byte {
	b := make([]byte, lead)
	align := func() {
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	align()
	for _, s := range syms {
		if s.addr < base {
			u32(uint32(s.addr))
		} else {
			u32(uint32(int32(-1 - int64(s.addr-base))))
		}
	}
	align()
	b = binary.LittleEndian.AppendUint64(b, base)
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
	if seqs {
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
	return append(b, make([]byte, 64)...)
}

func syntheticSyms(n int) []kallsym {
	const base = 0xffffffff81000000
	syms := []kallsym{{"fixed_percpu_data", 'D', 0}, {"current_task", 'D', 0x1fb80}}
	for i := 0; len(syms) < n; i++ {
		name := fmt.Sprintf("__sym_%d_x", i)
		if i == 7 {
			name = fmt.Sprintf("long_%0150d", 7) // two-byte length
		}
		syms = append(syms, kallsym{name, "Ttd"[i%3], base + uint64(i)*16})
	}
	return syms
}

func TestDecodeKallsymsRoundTrip(t *testing.T) {
	for _, seqs := range []bool{false, true} {
		t.Run(fmt.Sprintf("seqs=%v", seqs), func(t *testing.T) {
			want := syntheticSyms(1000)
			b := encodeKallsyms(want, 0xffffffff81000000, seqs, 40)
			got, err := decodeKallsyms(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.relativeBase != 0xffffffff81000000 {
				t.Errorf("relative base %#x", got.relativeBase)
			}
			if len(got.syms) != len(want) {
				t.Fatalf("%d symbols, want %d", len(got.syms), len(want))
			}
			for i := range want {
				if got.syms[i] != want[i] {
					t.Fatalf("symbol %d = %+v, want %+v", i, got.syms[i], want[i])
				}
			}
			if le.Uint64(b[got.baseAt:]) != got.relativeBase {
				t.Errorf("baseAt %d does not hold the relative base", got.baseAt)
			}
		})
	}
}

func TestDecodeKallsymsRejectsCorruption(t *testing.T) {
	b := encodeKallsyms(syntheticSyms(600), 0xffffffff81000000, true, 0)
	tab, err := decodeKallsyms(b)
	if err != nil {
		t.Fatal(err)
	}
	// a name length that no longer agrees with the markers
	bad := append([]byte(nil), b...)
	for i := 0; i+8 < tab.tokenTable; i += 8 {
		if le.Uint32(bad[i:]) == 600 && le.Uint32(bad[i+4:]) == 0 {
			bad[i+8]++
			break
		}
	}
	if _, err := decodeKallsyms(bad); !errors.Is(err, ErrKallsyms) {
		t.Errorf("corrupted markers: err = %v, want ErrKallsyms", err)
	}
	if _, err := decodeKallsyms(make([]byte, 4096)); !errors.Is(err, ErrKallsyms) {
		t.Errorf("zeros: err = %v, want ErrKallsyms", err)
	}
}

func FuzzDecodeKallsyms(f *testing.F) {
	f.Add(encodeKallsyms(syntheticSyms(300), 0xffffffff81000000, false, 0))
	f.Add(encodeKallsyms(syntheticSyms(20), 0xffffffff81000000, true, 8))
	f.Add(kallsymsDigits)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tab, err := decodeKallsyms(b)
		if err == nil && len(tab.syms) == 0 {
			t.Fatal("success without symbols")
		}
	})
}
