//go:build !linux

package fabric

import (
	"errors"
	"fmt"
	"os"
)

// localView is only available on Linux (memfd guest RAM).
type localView struct{ view *sigbusView }

type sigbusView struct{ mem []byte }

func (v *sigbusView) checkFault(r any) { panic(r) }

func openLocalView(*os.File, uint64) (*localView, error) {
	return nil, fmt.Errorf("guest ram view needs linux: %w", errors.ErrUnsupported)
}

func (v *localView) mode() string               { return "none" }
func (v *localView) guard() bool                { return false }
func (v *localView) unguard(bool)               {}
func (v *localView) pread([]byte, uint64) error { return errors.ErrUnsupported }
func (v *localView) close() error               { return nil }

func (v *localView) resident(uint64, []byte) error { return errors.ErrUnsupported }
