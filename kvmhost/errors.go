package kvmhost

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

func errNotBacked(g fabric.GFN) error {
	return fmt.Errorf("gfn %#x: %w", uint64(g), ErrNotBacked)
}
