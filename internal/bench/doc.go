// Package bench is the engine of vmemtrans's benchmarks: the fetch
// benchmark of a fabric.Transport against bare TCP between the same
// endpoints (Fetch), and the statistics every benchmark reports its runs
// with (Median, Percentile, Summarize). The CLI parses flags, dials, and
// prints what these return; the JSON field names of the result structs are
// the contract scripts parse.
package bench
