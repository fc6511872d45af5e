package physmem

import "errors"

// Range is one read of a batch: Len(Buf) bytes at address Addr. Err is set for
// this range alone when it cannot be read; a failed range leaves Buf undefined.
type Range struct {
	Addr uint64
	Buf  []byte
	Err  error
}

// Reader reads guest physical memory in batches.
//
// ReadPhys fills every range it can and returns nil when all succeeded, or an
// error wrapping ErrPartial when some failed (each failed range has its Err).
// It never stops at the first failure. Implementations are safe for
// concurrent use.
type Reader interface {
	ReadPhys(ranges []Range) error
	// Size is one past the highest readable physical address.
	Size() uint64
}

var (
	// ErrPartial reports a batch in which some ranges failed.
	ErrPartial = errors.New("some ranges could not be read")
	// ErrOutOfRange reports an address no memory backs.
	ErrOutOfRange = errors.New("physical address not backed")
)

// Sparse is implemented by readers that know where their data is. NextData
// returns the first range [start, end) at or after addr that may hold a
// non-zero byte; everything between addr and start reads as zeros or is not
// backed. ok is false when no data lies at or after addr. Scans use it to skip
// holes (sparse files, zero pages never stored, ELF zero tails) without
// reading them.
type Sparse interface {
	NextData(addr uint64) (start, end uint64, ok bool)
}
