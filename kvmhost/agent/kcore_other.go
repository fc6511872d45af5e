//go:build !linux

package agent

import "fmt"

// OpenKcore needs a Linux guest.
func OpenKcore() (*Kcore, error) {
	return nil, fmt.Errorf("kcore: %w", ErrUnsupported)
}
