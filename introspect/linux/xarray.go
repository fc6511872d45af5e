package linux

import (
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// XArray constants of 64-bit kernels (CONFIG_BASE_SMALL=0).
const (
	xaChunkShift = 6
	xaChunkSize  = 1 << xaChunkShift
	// xaMaxShift: a 64-bit index needs at most 11 levels (shift 0..60).
	xaMaxShift = 60
	// Internal entries below this are sibling, retry and zero markers, not
	// node pointers (xa_is_node: internal and > 4096).
	xaInternalLimit = 4096
)

// xaLayout is the part of struct xa_node the walk reads.
type xaLayout struct {
	shift, slots uint64
	span         span
}

func resolveXALayout(t Target) (*xaLayout, error) {
	l := layout{t: t}
	xl := &xaLayout{shift: l.off("xa_node", "shift"), slots: l.off("xa_node", "slots")}
	if l.err != nil {
		return nil, l.err
	}
	xl.span = spanOf([2]uint64{xl.shift, 1}, [2]uint64{xl.slots, xaChunkSize * 8})
	return xl, nil
}

func xaIsInternal(e uint64) bool { return e&3 == 2 }
func xaIsValue(e uint64) bool    { return e&1 == 1 }

// walkXArray returns the pointer entries of the xarray whose xa_head holds
// head, reading the tree one level per ReadVirt batch. Bad nodes are skipped
// with an error each; at most max nodes and entries are visited.
func walkXArray(t Target, head uint64, xl *xaLayout, max int) ([]uint64, error) {
	if head == 0 || xaIsValue(head) {
		return nil, nil
	}
	if !xaIsInternal(head) {
		return []uint64{head}, nil // a lone entry at index 0
	}
	if head <= xaInternalLimit {
		return nil, nil
	}
	type pending struct {
		node  uint64
		shift int // expected shift, -1 at the root
	}
	var leaves []uint64
	var errs []error
	visited := map[uint64]struct{}{}
	level := []pending{{node: head - 2, shift: -1}}
	seen := 0
	for len(level) > 0 {
		batch := make([]physmem.Range, 0, len(level))
		var nodes []pending
		for _, p := range level {
			if !kernelPointer(p.node, 8) {
				errs = append(errs, fmt.Errorf("xa_node %#x: %w", p.node, ErrBadPointer))
				continue
			}
			if _, ok := visited[p.node]; ok {
				errs = append(errs, fmt.Errorf("xa_node %#x reached twice: %w", p.node, ErrCycle))
				continue
			}
			visited[p.node] = struct{}{}
			batch = append(batch, physmem.Range{Addr: p.node + xl.span.lo, Buf: make([]byte, xl.span.hi-xl.span.lo)})
			nodes = append(nodes, p)
		}
		readBatch(t, batch)
		var next []pending
		for i, r := range batch {
			node := nodes[i].node
			if r.Err != nil {
				errs = append(errs, rangeErr("xa_node", node, r.Err))
				continue
			}
			shift := int(r.Buf[xl.shift-xl.span.lo])
			if shift > xaMaxShift || shift%xaChunkShift != 0 || (nodes[i].shift >= 0 && shift != nodes[i].shift) {
				errs = append(errs, fmt.Errorf("xa_node %#x: shift %d: %w", node, shift, ErrGarbage))
				continue
			}
			for s := uint64(0); s < xaChunkSize; s++ {
				e := xl.span.u64(r.Buf, xl.slots+s*8)
				if e == 0 || xaIsValue(e) || (xaIsInternal(e) && e <= xaInternalLimit) {
					continue // empty, a value, or a sibling/retry/zero marker
				}
				if seen++; seen > max {
					return leaves, errors.Join(append(errs, fmt.Errorf("xarray: %w (%d entries)", ErrLimit, max))...)
				}
				if !xaIsInternal(e) {
					leaves = append(leaves, e)
					continue
				}
				if shift == 0 {
					errs = append(errs, fmt.Errorf("xa_node %#x slot %d: node below leaf level: %w", node, s, ErrGarbage))
					continue
				}
				next = append(next, pending{node: e - 2, shift: shift - xaChunkShift})
			}
		}
		level = next
	}
	return leaves, errors.Join(errs...)
}
