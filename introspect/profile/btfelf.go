package profile

import (
	"debug/elf"
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

// sectionNames is .shstrtab: the names of sections 1 to 4 at offsets 1,
// 6, 14 and 22.
var sectionNames = []byte("\x00.BTF\x00.symtab\x00.strtab\x00.shstrtab\x00")

// newBTFELF lays out: the ELF header, the blob (.BTF), padding to 8, the
// null symbol (.symtab), an empty string (.strtab), .shstrtab, padding,
// and the five section headers.
func newBTFELF(blob []byte) *btfELF {
	ehdrLen, shdrLen, symLen := binary.Size(elf.Header64{}), binary.Size(elf.Section64{}), binary.Size(elf.Sym64{})
	symOff := (ehdrLen + len(blob) + 7) &^ 7
	strOff := symOff + symLen
	shstrOff := strOff + 1
	shOff := (shstrOff + len(sectionNames) + 7) &^ 7

	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS], ident[elf.EI_DATA], ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	head, _ := binary.Append(nil, le, elf.Header64{
		Ident: ident, Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: uint64(shOff), Ehsize: uint16(ehdrLen), Shentsize: uint16(shdrLen), Shnum: 5, Shstrndx: 4,
	})

	tail := make([]byte, strOff+1-ehdrLen-len(blob)) // padding, null symbol, empty string
	tail = append(tail, sectionNames...)
	tail = append(tail, make([]byte, shOff-shstrOff-len(sectionNames))...)
	for _, sh := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: uint64(ehdrLen), Size: uint64(len(blob)), Addralign: 1},
		{Name: 6, Type: uint32(elf.SHT_SYMTAB), Off: uint64(symOff), Size: uint64(symLen), Link: 3, Info: 1, Addralign: 8, Entsize: uint64(symLen)},
		{Name: 14, Type: uint32(elf.SHT_STRTAB), Off: uint64(strOff), Size: 1, Addralign: 1},
		{Name: 22, Type: uint32(elf.SHT_STRTAB), Off: uint64(shstrOff), Size: uint64(len(sectionNames)), Addralign: 1},
	} {
		tail, _ = binary.Append(tail, le, sh)
	}
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
