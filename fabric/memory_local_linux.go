//go:build linux

package fabric

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// localView reads guest RAM on this host. The preferred way is the SIGBUS
// view (see openSigbusView): a read-only private mapping of the RAM memfd
// with its own userfaultfd in SIGBUS mode, read with copy() while the
// goroutine turns faults into panics; a hole then faults instead of being
// filled, and the fault is recovered and reported as errHole. Where the view
// cannot be made, pread is the fallback: slower, and a hole reads as zeros
// (only the word recheck of the read protocol tells).
type localView struct {
	file *os.File
	fd   int
	size uint64
	view *sigbusView // nil: pread
	why  string      // why the view could not be made
}

func openLocalView(f *os.File, size uint64) (*localView, error) {
	var st unix.Stat_t
	fd := int(f.Fd())
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("ram file: stat: %w", err)
	}
	if uint64(st.Size) < size {
		return nil, fmt.Errorf("ram file of %d bytes is shorter than the layout (%#x): %w", st.Size, size, ErrBadLayout)
	}
	v := &localView{file: f, fd: fd, size: size}
	view, err := openSigbusView(fd, size)
	if err == nil && preadOnly {
		err = errors.Join(errNoView, view.close(), errors.New("pread forced"))
	}
	if err != nil {
		v.why = err.Error()
		return v, nil
	}
	v.view = view
	return v, nil
}

func (v *localView) mode() string {
	if v.view != nil {
		return "sigbus-view"
	}
	return "pread: " + v.why
}

// guard arms fault recovery for the calling goroutine (SetPanicOnFault is
// per goroutine) and returns the previous setting for unguard.
func (v *localView) guard() bool {
	if v.view == nil {
		return false
	}
	return debug.SetPanicOnFault(true)
}

func (v *localView) unguard(old bool) {
	if v.view != nil {
		debug.SetPanicOnFault(old)
	}
}

// pread fills dst from guest RAM at off with pread.
func (v *localView) pread(dst []byte, off uint64) error {
	for len(dst) > 0 {
		n, err := unix.Pread(v.fd, dst, int64(off))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("pread ram at %#x: %w", off, err)
		case n == 0:
			return fmt.Errorf("pread ram at %#x: %w", off, io.ErrUnexpectedEOF)
		}
		dst, off = dst[n:], off+uint64(n)
	}
	return nil
}

// resident fills vec with the residency of the pages of guest RAM from
// off on (bit 0 set: the memfd holds the page), one mincore of the view.
// It fails where there is no view.
func (v *localView) resident(off uint64, vec []byte) error {
	if v.view == nil {
		return errNoView
	}
	n := uint64(len(vec)) * PageSize
	if off+n > uint64(len(v.view.mem)) {
		return fmt.Errorf("residency of %#x+%#x beyond the view: %w", off, n, ErrBadLayout)
	}
	if len(vec) == 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&v.view.mem[off])), uintptr(n), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return fmt.Errorf("mincore of guest ram at %#x: %w", off, errno)
	}
	return nil
}

func (v *localView) close() error {
	if v.view != nil {
		return v.view.close()
	}
	return nil
}

var errNoView = errors.New("sigbus view unavailable")
