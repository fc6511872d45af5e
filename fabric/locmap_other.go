//go:build !linux

package fabric

import (
	"errors"
	"fmt"
	"os"
)

var errNoMemfd = fmt.Errorf("location map needs linux memfd: %w", errors.ErrUnsupported)

// CreateLocationMap is only available on Linux.
func CreateLocationMap(uint64) (*LocationMap, error) { return nil, errNoMemfd }

// ReadOnlyFile is only available on Linux.
func (m *LocationMap) ReadOnlyFile() (*os.File, error) { return nil, errNoMemfd }

// Close is only available on Linux.
func (m *LocationMap) Close() error { return errNoMemfd }

// OpenLocationMapReadOnly is only available on Linux.
func OpenLocationMapReadOnly(int) (*LocationView, error) { return nil, errNoMemfd }

// Close is only available on Linux.
func (v *LocationView) Close() error { return errNoMemfd }
