//go:build linux

package fabric

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/internal/uffd"
)

// sigbusView is a read-only MAP_PRIVATE mapping of the guest RAM memfd,
// registered MISSING with this process's own userfaultfd in SIGBUS mode.
// A resident page reads at memory speed; a read of a hole raises SIGBUS
// instead of allocating a page in the memfd (which an unregistered mapping
// would do, hiding that page from the runtime's userfaultfd for good). The
// userfaultfd must stay open as long as the mapping exists; nothing may
// populate the mapping before it is registered.
type sigbusView struct {
	mem        []byte
	base, end  uintptr
	fd         *uffd.FD
	closedOnce bool
}

func openSigbusView(fd int, size uint64) (*sigbusView, error) {
	length := (size + PageSize - 1) &^ (PageSize - 1)
	mem, err := unix.Mmap(fd, 0, int(length), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("%w: map guest ram: %w", errNoView, err)
	}
	u, err := uffd.New(uffd.FeatureSigbus | uffd.FeatureMissingShmem)
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("%w: %w", errNoView, err)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	if err := u.Register(base, uintptr(length), uffd.ModeMissing); err != nil {
		unix.Munmap(mem)
		u.Close()
		return nil, fmt.Errorf("%w: %w", errNoView, err)
	}
	return &sigbusView{mem: mem, base: base, end: base + uintptr(length), fd: u}, nil
}

// checkFault accepts a recovered panic that is a memory fault inside the
// view (a hole) and re-panics with anything else.
func (v *sigbusView) checkFault(r any) {
	if f, ok := r.(interface{ Addr() uintptr }); !ok || f.Addr() < v.base || f.Addr() >= v.end {
		panic(r)
	}
}

// close unmaps first and only then drops the registration: closing the
// userfaultfd of a live mapping would let a read of a hole allocate.
func (v *sigbusView) close() error {
	if v.closedOnce {
		return nil
	}
	v.closedOnce = true
	return errors.Join(unix.Munmap(v.mem), v.fd.Close())
}
