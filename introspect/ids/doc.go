// Package ids runs the IDS checks of introspect/linux and introspect/scan
// together over one guest and reduces their outcomes to Answers: plain,
// comparable values with no addresses that depend on how the memory was
// read. The same guest read through any physmem.Reader (an image, a live
// QEMU guest, a split-memory VM by any method) must give equal Answers; the
// split-memory demo and the transparency tests rely on that.
//
// A check that could not complete (a read it depends on failed) makes Run
// return an error naming it: a partial answer is never a clean one.
package ids
