package fabric

import (
	"fmt"
	"runtime"
	"time"
)

// MaxReadRetries bounds how many times the read protocol retries one frame
// whose location keeps changing before it gives up with ErrUnstable. With the
// backoff below that is tens of milliseconds of uninterrupted moves, far
// longer than any single page-in or page-out.
const MaxReadRetries = 64

// ReadStable runs the read protocol for one frame: load the word of g, call
// read with it (read fetches the data from wherever the word says), load
// the word again, and retry if it changed. It returns the word the data
// was read under. No locks: a writer never waits for readers.
//
// A moving frame is not read at all, only waited for. read's own error is
// returned only if the word held still across it (a failure during a move
// is retried like any other read that raced a move). A GFN outside the map
// gives ErrGFNRange; a word that keeps changing through MaxReadRetries
// attempts gives ErrUnstable.
func ReadStable(locs Locations, g GFN, read func(Word) error) (Word, error) {
	return readStable(locs, g, MaxReadRetries, read)
}

func readStable(locs Locations, g GFN, retries int, read func(Word) error) (Word, error) {
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			backoff(attempt)
		}
		w := locs.Load(g)
		if err := checkWord(g, w); err != nil {
			return w, err
		}
		if w.State() == StateMoving {
			continue
		}
		err := read(w)
		if locs.Load(g) == w {
			return w, err
		}
	}
	return InvalidWord, fmt.Errorf("read gfn %#x: %d attempts: %w", uint64(g), retries+1, ErrUnstable)
}

// ReadStableBatch runs the read protocol for many frames at once, so that
// remote ones can share one Transport batch. For each round it loads the
// words of the pending entries into words, calls read with the indices of
// those to fetch (read sets errs[i] for an entry that fails, or returns an
// error for all of them), then rechecks every word and retries the entries
// whose word changed. words[i] ends up as the word entry i was read under.
//
// It returns nil if every entry succeeded, else an error wrapping
// ErrPartial; errs tells which entries failed and why (ErrGFNRange,
// ErrUnstable, or read's error). words and errs must be as long as gfns.
func ReadStableBatch(locs Locations, gfns []GFN, words []Word, errs []error, read func(pending []int) error) error {
	return readStableBatch(locs, gfns, words, errs, MaxReadRetries, nil, read, nil)
}

// batchScratch is index space readStableBatch may reuse across calls.
type batchScratch struct{ todo, pending, retry []int }

// readStableBatch is ReadStableBatch with reusable index space and an
// optional held hook, called for each read entry at once when its recheck
// finds the word unchanged (its data is final).
func readStableBatch(locs Locations, gfns []GFN, words []Word, errs []error, retries int, scratch *batchScratch,
	read func(pending []int) error, held func(i int)) error {
	if len(words) != len(gfns) || len(errs) != len(gfns) {
		return fmt.Errorf("read batch: %d gfns, %d words, %d errs: %w", len(gfns), len(words), len(errs), ErrBadLocation)
	}
	if scratch == nil {
		scratch = &batchScratch{}
	}
	todo := grow(scratch.todo, len(gfns))
	for i := range todo {
		todo[i] = i
		errs[i] = nil
	}
	pending, retry := grow(scratch.pending, len(gfns))[:0], scratch.retry[:0]
	defer func() { scratch.todo, scratch.pending, scratch.retry = todo, pending, retry }()
	for attempt := 0; len(todo) > 0 && attempt <= retries; attempt++ {
		if attempt > 0 {
			backoff(attempt)
		}
		pending, retry = pending[:0], retry[:0]
		for _, i := range todo {
			w := locs.Load(gfns[i])
			words[i] = w
			switch {
			case w.State() == StateLocal && w.Valid(): // the common case, checked first
				pending = append(pending, i)
			case checkWord(gfns[i], w) != nil:
				errs[i] = checkWord(gfns[i], w)
			case w.State() == StateMoving:
				retry = append(retry, i)
			default:
				pending = append(pending, i)
			}
		}
		var batchErr error
		if len(pending) > 0 {
			batchErr = read(pending)
		}
		for _, i := range pending {
			if locs.Load(gfns[i]) != words[i] {
				errs[i] = nil
				retry = append(retry, i)
				continue
			}
			if errs[i] == nil && batchErr != nil {
				errs[i] = batchErr
			}
			if held != nil {
				held(i)
			}
		}
		todo, retry = retry, todo[:0]
	}
	for _, i := range todo {
		words[i] = InvalidWord
		errs[i] = fmt.Errorf("read gfn %#x: %d attempts: %w", uint64(gfns[i]), retries+1, ErrUnstable)
	}
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("read batch: %d of %d gfns failed: %w", failed, len(gfns), ErrPartial)
	}
	return nil
}

func checkWord(g GFN, w Word) error {
	if w == InvalidWord {
		return fmt.Errorf("read gfn %#x: %w", uint64(g), ErrGFNRange)
	}
	if !w.Valid() {
		return fmt.Errorf("read gfn %#x: word %v: %w", uint64(g), w, ErrBadLocation)
	}
	return nil
}

// backoff yields the processor for the first few retries (the writer is
// usually mid-store on another core), then sleeps, doubling up to 1 ms, so
// that a long move (a remote page-in) is waited out instead of spun on.
func backoff(attempt int) {
	const spins = 8
	if attempt <= spins {
		runtime.Gosched()
		return
	}
	d := time.Microsecond << min(attempt-spins, 10)
	time.Sleep(min(d, time.Millisecond))
}
