package profile

import (
	"bytes"
	"testing"
)

func btfSeed() []byte {
	// header, one int type ("int", 32 bits), strings "\0int\0"
	b := append([]byte(nil), btfMagic...)
	b = le.AppendUint32(b, 0)        // type_off
	b = le.AppendUint32(b, 16)       // type_len
	b = le.AppendUint32(b, 16)       // str_off
	b = le.AppendUint32(b, 5)        // str_len
	b = le.AppendUint32(b, 1)        // name_off
	b = le.AppendUint32(b, 1<<24)    // info: kind INT
	b = le.AppendUint32(b, 4)        // size
	b = le.AppendUint32(b, 1<<24|32) // encoding: signed, 32 bits
	return append(b, "\x00int\x00"...)
}

func TestBTFBlobLen(t *testing.T) {
	seed := btfSeed()
	n, err := btfBlobLen(append(seed, 0xaa, 0xbb))
	if err != nil || n != len(seed) {
		t.Fatalf("btfBlobLen = %d, %v; want %d", n, err, len(seed))
	}
	ty, err := loadTypes(seed[:n])
	if err != nil {
		t.Fatal(err)
	}
	if sz, err := ty.size("int"); err != nil || sz != 4 {
		t.Errorf("size(int) = %d, %v", sz, err)
	}
	for name, mut := range map[string]func([]byte){
		"magic":     func(b []byte) { b[0] = 0 },
		"str_off":   func(b []byte) { le.PutUint32(b[16:], 20) },
		"str_len":   func(b []byte) { le.PutUint32(b[20:], 1<<20) },
		"unaligned": func(b []byte) { le.PutUint32(b[12:], 15) },
	} {
		b := append([]byte(nil), seed...)
		mut(b)
		if _, err := btfBlobLen(b); err == nil {
			t.Errorf("%s: corrupted header accepted", name)
		}
	}
}

// FuzzBTFBlob feeds arbitrary bytes to the BTF header check and, when it
// passes, to the BTF parser: garbage must give an error, never a panic.
func FuzzBTFBlob(f *testing.F) {
	f.Add(btfSeed())
	f.Add(btfMagic)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := btfBlobLen(b)
		if err != nil {
			return
		}
		if n < btfHeaderLen || n > len(b) {
			t.Fatalf("blob length %d of %d bytes", n, len(b))
		}
		if ty, err := loadTypes(b[:n]); err == nil {
			_, _ = ty.offset("task_struct", "comm")
		}
	})
}

// FuzzExtractVmlinux feeds arbitrary bytes to the payload finders and
// decoders (xz container, BCJ, zstd, gzip).
func FuzzExtractVmlinux(f *testing.F) {
	f.Add(append(append([]byte("HdrS"), xzMagic...), 0, 1, 0x69, 0x22, 0xde, 0x36, 2, 1, 4, 0, 0x21, 1, 0x16, 0, 0, 0, 0, 0))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := ExtractVmlinux(b)
		if err == nil && !bytes.HasPrefix(out, elfMagic) {
			t.Fatal("success without an ELF")
		}
		buf := append([]byte(nil), b...)
		bcjX86(buf, 0)
	})
}
