//go:build linux

package fabric

import "fmt"

// sigbusView is the read-only SIGBUS-mode view of guest RAM.
type sigbusView struct{}

func openSigbusView(fd int, size uint64) (*sigbusView, error) {
	return nil, fmt.Errorf("%w: no userfaultfd binding yet", errNoView)
}

func (v *sigbusView) read(dst []byte, off uint64) error { return errNoView }
func (v *sigbusView) close() error                      { return nil }
