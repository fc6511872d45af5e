package profile

import (
	"bytes"
	"crypto/sha256"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// btfAheadWindow is how far past the kallsyms token table the vmlinux BTF
// is looked for: the linker puts .BTF after .rodata, which holds kallsyms
// (4 MiB further on 7.x, 1.6 MiB on 6.1). It bounds what a guess that
// finds nothing reads for nothing.
const btfAheadWindow = 16 << 20

// minVmlinuxBTF tells the kernel's own BTF from a module's, which is a
// few KiB of split BTF: a vmlinux blob is megabytes.
const minVmlinuxBTF = 1 << 20

// introspectedTypes are the structs the IDS reads first; inflating one in
// cilium/ebpf builds every type it reaches, most of a kernel's graph for
// task_struct (20 ms on 7.x).
var introspectedTypes = []string{"task_struct", "mm_struct", "signal_struct", "module"}

// btfAhead parses the kernel's BTF on its own goroutine while the caller
// decodes kallsyms, which say where the BTF is (__start_BTF) only once
// they are decoded. It guesses: the first vmlinux-sized BTF blob after
// the token table, read where it lies. The guess is used only if it is
// the blob __start_BTF points at; otherwise the blob is parsed again.
type btfAhead struct {
	done chan struct{}
	phys uint64
	size int
	ty   *types
	sum  [sha256.Size]byte
	err  error
}

// startBTFAhead starts the guess from physical address from. Only a
// lending reader is searched: copying the window from any other would
// cost more than it saves.
func startBTFAhead(r physmem.Reader, from uint64) *btfAhead {
	a := &btfAhead{done: make(chan struct{})}
	l, ok := r.(physmem.Lender)
	if !ok || from >= r.Size() {
		close(a.done)
		return a
	}
	go func() {
		defer close(a.done)
		// The first vmlinux-sized header ends the search. A blob that
		// lies whole in the segment is parsed there; one in pieces (a
		// split VM lends in rounds) is read after the lend.
		var inPieces bool
		n := min(uint64(btfAheadWindow), r.Size()-from)
		_ = l.LendPhys(from, n, func(s physmem.Segment) bool {
			if s.Retry { // what the first showing gave is void
				a.ty, a.err, a.phys, a.size, inPieces = nil, nil, 0, 0, false
			}
			if s.Err != nil || s.Zero {
				return true
			}
			for off := 0; ; off++ {
				i := bytes.Index(s.Data[off:], btfMagic)
				if i < 0 {
					return true
				}
				off += i
				total, err := btfDeclaredLen(s.Data[off:])
				if err != nil || total < minVmlinuxBTF {
					continue
				}
				a.phys, a.size = s.Addr+uint64(off), total
				if off+total > len(s.Data) {
					inPieces = true
					return false
				}
				// Parsed here, in the segment: the parser keeps its own copy.
				if _, err := btfBlobLen(s.Data[off:]); err != nil {
					a.err = err
					return false
				}
				a.ty, a.sum, a.err = parseBTF(s.Data[off : off+total])
				return false
			}
		})
		if inPieces && a.size > 0 {
			a.err = withPhys(r, a.phys, a.size, func(raw []byte) (err error) {
				if _, err = btfBlobLen(raw); err == nil {
					a.ty, a.sum, err = parseBTF(raw)
				}
				return err
			})
		}
		if a.ty != nil && a.err == nil {
			for _, name := range introspectedTypes {
				_, _ = a.ty.lookup(name)
			}
		}
	}()
	return a
}

// at waits for the guess and returns it if it is the blob of size bytes
// at phys.
func (a *btfAhead) at(phys uint64, size int) (*types, [sha256.Size]byte, bool) {
	<-a.done
	if a.ty == nil || a.err != nil || a.phys != phys || a.size != size {
		return nil, [sha256.Size]byte{}, false
	}
	return a.ty, a.sum, true
}
