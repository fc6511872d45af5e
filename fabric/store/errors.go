package store

import "errors"

var (
	// ErrNoRegion reports a VM that has no region in the store.
	ErrNoRegion = errors.New("no region for vm")
	// ErrSizeMismatch reports a region opened with a slot count other than the one it was created with.
	ErrSizeMismatch = errors.New("region slot count mismatch")
	// ErrBadVMID reports a VM id that is not a safe single path element.
	ErrBadVMID = errors.New("invalid vm id")
	// ErrCorrupt reports a region whose metadata or backing file is damaged.
	ErrCorrupt = errors.New("corrupt region")
	// ErrLocked reports a state directory already in use by another store.
	ErrLocked = errors.New("state directory in use")
	// ErrBadSize reports a requested slot count of zero or beyond MaxSlots.
	ErrBadSize = errors.New("invalid region size")
	// ErrUnsupported reports a platform without the file operations the store needs.
	ErrUnsupported = errors.New("slot store not supported on this platform")
)
