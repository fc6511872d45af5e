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
// round trips as the longest one, not their sum. At most max elements are
// read over all lists together.
func walkLists(t Target, specs []listSpec, max int) []listResult {
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
			if w.done {
				continue
			}
			s := w.spec
			var addr, n uint64
			switch {
			case !w.started && s.headIsElem:
				if count >= max {
					w.stop(fmt.Errorf("list at %#x: %w (%d objects)", s.head, ErrLimit, max))
					continue
				}
				addr, n = s.head-s.linkOff+s.span.lo, s.span.hi-s.span.lo
			case !w.started:
				addr, n = s.head, 8
			default:
				link := w.next
				if link == s.head {
					w.done = true
					continue
				}
				if !kernelPointer(link, 8) {
					w.stop(fmt.Errorf("list at %#x: link %#x: %w", s.head, link, ErrBadPointer))
					continue
				}
				if _, seen := w.visited[link]; seen {
					w.stop(fmt.Errorf("list at %#x: link %#x seen twice: %w", s.head, link, ErrCycle))
					continue
				}
				if count >= max {
					w.stop(fmt.Errorf("list at %#x: %w (%d objects)", s.head, ErrLimit, max))
					continue
				}
				w.visited[link] = struct{}{}
				addr, n = link-s.linkOff+s.span.lo, s.span.hi-s.span.lo
			}
			batch = append(batch, physmem.Range{Addr: addr, Buf: make([]byte, n)})
			owner = append(owner, w)
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
			w.started = true
			w.res.elems = append(w.res.elems, listElem{addr: r.Addr - s.span.lo, buf: r.Buf})
			count++
			w.next = s.span.u64(r.Buf, s.linkOff)
		}
	}
	out := make([]listResult, len(ws))
	for i, w := range ws {
		out[i] = w.res
	}
	return out
}

func (w *listWalk) stop(err error) {
	w.res.err = err
	w.done = true
}
