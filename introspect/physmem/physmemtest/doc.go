// Package physmemtest holds what tests of physical-memory readers share: the
// conformance suite every physmem.Reader must pass (Run), and Faulty, a
// reader that fails chosen pages, so that the code above a reader can show
// it reports "could not read" instead of a wrong answer.
package physmemtest
