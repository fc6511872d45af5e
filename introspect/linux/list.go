package linux

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// listSpec is one circular struct list_head list to follow.
type listSpec struct {
	head    uint64 // address of the anchoring list_head
	linkOff uint64 // offset of the list_head member inside an element
	span    span   // element bytes to read; covers linkOff..linkOff+8
	// headIsElem: the anchor is itself the link of an element that belongs to
	// the list (init_task.tasks); otherwise it is a bare list_head (modules).
	headIsElem bool
}

// listElem is one element found: its address and its span's bytes.
type listElem struct {
	addr uint64
	buf  []byte
}

// listResult is what one list walk found and why it stopped early, if it did.
type listResult struct {
	elems []listElem
	err   error
}

type listWalk struct {
	spec    listSpec
	next    uint64 // link address to visit next
	started bool
	done    bool
	visited map[uint64]struct{}
	res     listResult
}

// walkLists follows all lists in lockstep: each round is one ReadVirt batch
// holding the next element of every list still open, so k lists cost as many
// round trips as the longest one, not their sum. pre holds element spans
// already read (by element address); a walk steps through those without a
// round trip. At most max elements are visited over all lists together.
func walkLists(t Target, specs []listSpec, pre map[uint64][]byte, max int) []listResult {
	ws := make([]*listWalk, len(specs))
	for i, s := range specs {
		ws[i] = &listWalk{spec: s, visited: map[uint64]struct{}{s.head: {}}}
	}
	count := 0
	var batch []physmem.Range
	var owner []*listWalk
	for {
		batch, owner = batch[:0], owner[:0]
		for _, w := range ws {
			for !w.done {
				elem, n, ok := w.step(count, max)
				if !ok {
					break
				}
				if buf, hit := pre[elem]; hit && (w.started || w.spec.headIsElem) {
					w.take(elem, buf)
					count++
					continue
				}
				batch = append(batch, physmem.Range{Addr: elem + w.readOff(), Buf: make([]byte, n)})
				owner = append(owner, w)
				break
			}
		}
		if len(batch) == 0 {
			break
		}
		readBatch(t, batch)
		for i, r := range batch {
			w := owner[i]
			s := w.spec
			if r.Err != nil {
				w.stop(fmt.Errorf("list at %#x: %w", s.head, rangeErr("element", r.Addr, r.Err)))
				continue
			}
			if !w.started && !s.headIsElem {
				w.started = true
				w.next = le.Uint64(r.Buf)
				continue
			}
			w.take(r.Addr-s.span.lo, r.Buf)
			count++
		}
	}
	out := make([]listResult, len(ws))
	for i, w := range ws {
		out[i] = w.res
	}
	return out
}

// step checks the walk's next link and returns the element address to read
// and how many bytes; ok is false when the walk ended (w.done is then set)
// or, before the first read of a bare head, the head itself is returned with
// n = 8 and elem = head (readOff is then 0).
func (w *listWalk) step(count, max int) (elem, n uint64, ok bool) {
	s := w.spec
	switch {
	case !w.started && s.headIsElem:
		if count >= max {
			w.stop(fmt.Errorf("list at %#x: %w (%d objects)", s.head, ErrLimit, max))
			return 0, 0, false
		}
		return s.head - s.linkOff, s.span.hi - s.span.lo, true
	case !w.started:
		return s.head, 8, true
	}
	link := w.next
	if link == s.head {
		w.done = true
		return 0, 0, false
	}
	if !kernelPointer(link, 8) {
		w.stop(fmt.Errorf("list at %#x: link %#x: %w", s.head, link, ErrBadPointer))
		return 0, 0, false
	}
	if _, seen := w.visited[link]; seen {
		w.stop(fmt.Errorf("list at %#x: link %#x seen twice: %w", s.head, link, ErrCycle))
		return 0, 0, false
	}
	if count >= max {
		w.stop(fmt.Errorf("list at %#x: %w (%d objects)", s.head, ErrLimit, max))
		return 0, 0, false
	}
	w.visited[link] = struct{}{}
	return link - s.linkOff, s.span.hi - s.span.lo, true
}

// readOff is where the next read starts relative to step's address.
func (w *listWalk) readOff() uint64 {
	if !w.started && !w.spec.headIsElem {
		return 0
	}
	return w.spec.span.lo
}

// take records an element and moves to its successor.
func (w *listWalk) take(elem uint64, buf []byte) {
	w.started = true
	w.res.elems = append(w.res.elems, listElem{addr: elem, buf: buf})
	w.next = w.spec.span.u64(buf, w.spec.linkOff)
}

func (w *listWalk) stop(err error) {
	w.res.err = err
	w.done = true
}
