package profile

import (
	"encoding/binary"
	"io"
	"runtime"

	"github.com/vmemtrans/vmemtrans/internal/hugemem"
)

// btfELF presents a raw BTF blob as the .BTF section of a minimal ELF
// object (no code, an empty symbol table). cilium/ebpf reads a raw blob
// with io.ReadAll, which copies it twice through growing chunks; a
// section it reads with one exact-size copy. On a 7.x kernel's 5.5 MiB
// blob that is most of the parse, on a machine where fresh memory faults
// in 4 KiB pages.
type btfELF struct {
	head, blob, tail []byte
}

const (
	elfHeaderLen  = 64
	elfSectionLen = 64
	elfSymLen     = 24
)

// sectionNames is .shstrtab: the names of sections 1 to 4 at offsets 1,
// 6, 14 and 22.
var sectionNames = []byte("\x00.BTF\x00.symtab\x00.strtab\x00.shstrtab\x00")

func newBTFELF(blob []byte) *btfELF {
	le := binary.LittleEndian
	pad := (8 - len(blob)%8) % 8
	symOff := elfHeaderLen + len(blob) + pad
	strOff := symOff + elfSymLen
	shstrOff := strOff + 1
	shOff := (shstrOff + len(sectionNames) + 7) &^ 7

	head := make([]byte, elfHeaderLen)
	copy(head, "\x7fELF")
	head[4], head[5], head[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le.PutUint16(head[16:], 1)          // ET_REL
	le.PutUint16(head[18:], 62)         // EM_X86_64
	le.PutUint32(head[20:], 1)
	le.PutUint64(head[40:], uint64(shOff))
	le.PutUint16(head[52:], elfHeaderLen)
	le.PutUint16(head[58:], elfSectionLen)
	le.PutUint16(head[60:], 5) // null, .BTF, .symtab, .strtab, .shstrtab
	le.PutUint16(head[62:], 4)

	tail := make([]byte, shOff+5*elfSectionLen-symOff+pad)
	at := pad       // tail starts at the blob's end
	at += elfSymLen // the null symbol, zeros
	at++            // .strtab: one empty string
	copy(tail[at:], sectionNames)
	section := func(i int, name, typ uint32, off, size int, link, info uint32, entsize uint64) {
		s := tail[shOff-(elfHeaderLen+len(blob))+i*elfSectionLen:]
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint32(s[40:], link)
		le.PutUint32(s[44:], info)
		le.PutUint64(s[48:], 1)
		le.PutUint64(s[56:], entsize)
	}
	section(1, 1, 1, elfHeaderLen, len(blob), 0, 0, 0)      // .BTF, PROGBITS
	section(2, 6, 2, symOff, elfSymLen, 3, 1, elfSymLen)    // .symtab
	section(3, 14, 3, strOff, 1, 0, 0, 0)                   // .strtab
	section(4, 22, 3, shstrOff, len(sectionNames), 0, 0, 0) // .shstrtab
	return &btfELF{head: head, blob: blob, tail: tail}
}

// ReadAt reads the object as if it were one byte slice.
func (e *btfELF) ReadAt(p []byte, off int64) (int, error) {
	// p is the library's fresh copy of the section, megabytes written
	// once: faulted in by huge pages, not 4 KiB ones.
	hugemem.Advise(p)
	n := 0
	for _, part := range [][]byte{e.head, e.blob, e.tail} {
		if off >= int64(len(part)) {
			off -= int64(len(part))
			continue
		}
		n += copyPreemptible(p[n:], part[off:])
		off = 0
		if n == len(p) {
			return n, nil
		}
	}
	return n, io.EOF
}

// copyPreemptible copies in steps with a yield between them. A copy of
// megabytes into memory never touched is tens of milliseconds of page
// faults inside memmove, where the scheduler cannot stop the goroutine:
// a garbage collection waiting to scan its stack would hold up every
// other goroutine that allocates meanwhile (35 ms on 6.1's blob).
func copyPreemptible(dst, src []byte) int {
	const step = 256 << 10
	n := 0
	for n < len(dst) && n < len(src) {
		n += copy(dst[n:], src[n:min(len(src), n+step)])
		runtime.Gosched()
	}
	return n
}
