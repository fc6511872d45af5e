package linux

import "github.com/vmemtrans/vmemtrans/introspect/physmem"

// Target is the running kernel the walkers inspect: symbols at their
// runtime (KASLR-slid) virtual addresses, type layout from BTF, and batched
// reads of kernel virtual memory. introspect/kernel.Kernel implements it;
// tests use synthetic targets.
type Target interface {
	// Symbol returns the runtime virtual address of a kernel symbol.
	Symbol(name string) (uint64, error)
	// Offset returns the byte offset of member in struct typ. member may be a
	// dotted path ("pid_links.first"); anonymous structs and unions are searched.
	Offset(typ, member string) (uint64, error)
	// Size returns the size in bytes of type typ.
	Size(typ string) (uint64, error)
	// ReadVirt reads kernel virtual memory in a batch; Range.Addr is virtual.
	// Per-range errors as in physmem.Reader.
	ReadVirt(ranges []physmem.Range) error
	// TextRange returns the runtime [start, end) of kernel text (_stext.._etext).
	TextRange() (start, end uint64, err error)
}
