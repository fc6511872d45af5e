// Package demo is the whole system on one machine, as `vmemtrans demo` runs
// it: a real guest's memory image is split-migrated by the split-memory
// runtime onto sub-hosts served on loopback, a synthetic workload runs on
// it, and the IDS suite (introspect/ids) reads the running split VM through
// fabric.Memory with every method, twice each, beside the same suite on the
// unsplit image. Each run records wall time, remote pages fetched, pages
// exchanged, cache hits and the change of the VM's resident set, and
// whether its answers equal the unsplit image's.
package demo
