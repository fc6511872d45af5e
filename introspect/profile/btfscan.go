package profile

import (
	"bytes"
	"fmt"
)

// btfMagic is the start of a BTF header: magic 0xEB9F (little-endian),
// version 1, flags 0, hdr_len 24.
var btfMagic = []byte{0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00}

const (
	btfHeaderLen = 24
	// maxBTF bounds a plausible vmlinux BTF blob (6.1's is about 4 MiB).
	maxBTF = 256 << 20
)

// btfBlobLen checks the BTF header at the start of b and returns the length
// of the whole blob (header, types and strings). The type section must start
// the data and the string section follow it, as pahole writes them.
func btfBlobLen(b []byte) (int, error) {
	n, err := btfDeclaredLen(b)
	if err != nil {
		return 0, err
	}
	total, strOff := uint64(n), uint64(le.Uint32(b[16:]))
	if total > uint64(len(b)) {
		return 0, fmt.Errorf("btf blob of %d bytes exceeds %d available: %w", total, len(b), ErrBTF)
	}
	str := b[btfHeaderLen+strOff : total]
	if str[0] != 0 || str[len(str)-1] != 0 {
		return 0, fmt.Errorf("btf string section not NUL-delimited: %w", ErrBTF)
	}
	return int(total), nil
}

// btfDeclaredLen checks the BTF header at the start of b (only the header
// need be there) and returns the length of the blob it declares.
func btfDeclaredLen(b []byte) (int, error) {
	if len(b) < btfHeaderLen || !bytes.HasPrefix(b, btfMagic) {
		return 0, fmt.Errorf("btf header magic: %w", ErrBTF)
	}
	typeOff := uint64(le.Uint32(b[8:]))
	typeLen := uint64(le.Uint32(b[12:]))
	strOff := uint64(le.Uint32(b[16:]))
	strLen := uint64(le.Uint32(b[20:]))
	switch {
	case typeOff != 0 || typeLen == 0 || typeLen%4 != 0:
		return 0, fmt.Errorf("btf type section at %d of %d bytes: %w", typeOff, typeLen, ErrBTF)
	case strOff != typeOff+typeLen || strLen == 0:
		return 0, fmt.Errorf("btf string section at %d of %d bytes: %w", strOff, strLen, ErrBTF)
	}
	total := btfHeaderLen + strOff + strLen
	if total > maxBTF {
		return 0, fmt.Errorf("btf blob of %d bytes exceeds %d: %w", total, maxBTF, ErrBTF)
	}
	return int(total), nil
}
