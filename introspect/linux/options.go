package linux

// DefaultMaxObjects bounds a walk when Options.MaxObjects is zero. It is
// above PID_MAX_LIMIT's practical use (about a million tasks would exhaust a
// large guest first) and keeps a walk over garbage finite.
const DefaultMaxObjects = 1 << 20

// Options tune a walk.
type Options struct {
	// MaxObjects caps the objects one walk visits; 0 means DefaultMaxObjects.
	MaxObjects int
	// Threads makes Tasks list every thread, not only thread-group leaders.
	Threads bool
	// Syscalls is the number of sys_call_table entries; 0 asks the target
	// (SymbolLookup: where the next symbol starts) and falls back to DefaultSyscalls.
	Syscalls int
}

func (o Options) max() int {
	if o.MaxObjects <= 0 {
		return DefaultMaxObjects
	}
	return o.MaxObjects
}
