package store

import "fmt"

// MaxVMIDLen is the longest accepted VM id.
const MaxVMIDLen = 64

// ValidVMID reports whether vm is a well-formed VM id: 1 to 64 characters
// from [A-Za-z0-9._-], starting with a letter or digit. Such an id can never
// name a parent directory or contain a separator.
func ValidVMID(vm string) error {
	if len(vm) == 0 || len(vm) > MaxVMIDLen {
		return fmt.Errorf("vm id of %d bytes: %w", len(vm), ErrBadVMID)
	}
	for i := 0; i < len(vm); i++ {
		c := vm[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || (i > 0 && (c == '.' || c == '_' || c == '-')) {
			continue
		}
		return fmt.Errorf("vm id %q: byte %d not allowed: %w", vm, i, ErrBadVMID)
	}
	return nil
}
