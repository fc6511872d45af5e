// Package fabrictest is the conformance suite every fabric.Transport must
// pass, plus MemTransport, an in-process Transport over a byte slice.
//
// An implementation's own test supplies a Factory that makes a fresh peer (a
// zero-filled region of the asked slot count, served by whatever the
// transport talks to) and calls Run. Run checks the Transport contract:
// round trips of random pages, batch sizes 1..1024, per-entry errors
// (ErrSlotRange, ErrBufferSize, exactly as fabric.CheckSlotIO words them)
// that leave the rest of a batch intact and make the call return ErrPartial
// naming the first (fabric.FinishBatch), stale entry errors cleared on
// success, empty batches, concurrent callers, context cancellation and deadlines, peer death
// and Close while big batches are in flight (every call returns in bounded
// time with ErrPeer or ErrClosed, never hangs), use after Close, Slots and
// Kind.
//
// Run closes the Transport it gets from each peer at the end of each subtest;
// the Factory releases the serving side with t.Cleanup. Close must therefore
// be safe to call more than once.
//
// RunBenchmarks measures read throughput of a Transport at batch sizes 1, 16
// and 256, sequential and with parallel callers.
package fabrictest
