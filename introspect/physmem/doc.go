// Package physmem is the contract every introspection component reads guest
// physical memory through, and nothing else: the batch Reader, its Range, its
// sentinel errors, and helpers that work over any Reader.
//
// Contract: a Reader serves batches of ranges. Each range succeeds or fails
// on its own (Range.Err); a batch with failures returns an error wrapping
// ErrPartial and never stops at the first failure. Every failed range has its
// Err set, also when the whole batch fails at once. An address no memory
// backs fails with ErrOutOfRange. Zero-length ranges always succeed. Readers
// are safe for concurrent use. A Reader may also implement Sparse, telling
// where its data lies, so that Scan skips holes, and Lender, showing its
// memory in place (segments in address order, zero runs named as such, a
// segment shown again with Retry when it changed under the visitor) so
// that a whole-memory scan copies nothing.
//
// Implementations live beside it: introspect/image (raw, zstd and QEMU ELF
// images, live QEMU memory files) and fabric.Memory (a split-memory VM read
// through the location map). physmemtest holds the conformance suite every
// implementation runs, and a fault-injecting reader for tests of the code
// above. WithLatency wraps any Reader to model remote memory in benchmarks.
package physmem
