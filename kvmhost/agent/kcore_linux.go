//go:build linux

package agent

import (
	"fmt"
	"os"
)

// OpenKcore opens /proc/kcore (root, CAP_SYS_RAWIO) for touching pages.
func OpenKcore() (*Kcore, error) {
	f, err := os.Open(KcorePath)
	if err != nil {
		return nil, fmt.Errorf("kcore: %w: %w (run the agent as root in the guest; the kernel needs CONFIG_PROC_KCORE)", ErrUnavailable, err)
	}
	k, err := NewKcore(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return k, nil
}
