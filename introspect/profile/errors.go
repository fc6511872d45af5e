package profile

import "errors"

var (
	// ErrNoPayload reports a bzImage without a payload this package can unpack.
	ErrNoPayload = errors.New("no supported compressed kernel payload")
	// ErrNotKernel reports an image that lacks what every Linux kernel has.
	ErrNotKernel = errors.New("not a linux kernel image")
	// ErrKallsyms reports kallsyms tables that are missing or inconsistent.
	ErrKallsyms = errors.New("kallsyms tables not found")
	// ErrBTF reports a missing or unparseable BTF blob.
	ErrBTF = errors.New("btf type information not found")
	// ErrNoSymbol reports a symbol the kernel does not have.
	ErrNoSymbol = errors.New("no such symbol")
	// ErrNoType reports a type name BTF does not define.
	ErrNoType = errors.New("no such type")
	// ErrNoMember reports a member path a type does not have.
	ErrNoMember = errors.New("no such member")
	// ErrMismatch reports kallsyms disagreeing with __ksymtab.
	ErrMismatch = errors.New("kallsyms disagrees with ksymtab")
)
