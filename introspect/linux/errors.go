package linux

import "errors"

var (
	// ErrLayout reports a symbol, member or type the target cannot resolve.
	ErrLayout = errors.New("kernel layout not available")
	// ErrBadPointer reports a pointer that cannot be a kernel object address.
	ErrBadPointer = errors.New("implausible kernel pointer")
	// ErrUnreadable reports kernel memory that could not be read.
	ErrUnreadable = errors.New("kernel memory unreadable")
	// ErrCycle reports a list or tree that loops back on itself.
	ErrCycle = errors.New("cycle in kernel structure")
	// ErrLimit reports a walk stopped by Options.MaxObjects.
	ErrLimit = errors.New("walk bound reached")
	// ErrGarbage reports an object whose fields cannot be real.
	ErrGarbage = errors.New("implausible object contents")
	// ErrBaseline reports a text baseline that is malformed or from another boot.
	ErrBaseline = errors.New("invalid kernel text baseline")
)
