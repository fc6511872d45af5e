package linux

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

var le = binary.LittleEndian

// readBatch issues one ReadVirt and leaves every range with its own outcome:
// an error that is not a per-range partial failure marks all ranges failed.
func readBatch(t Target, rs []physmem.Range) {
	if len(rs) == 0 {
		return
	}
	err := t.ReadVirt(rs)
	if err == nil || errors.Is(err, physmem.ErrPartial) {
		return
	}
	for i := range rs {
		if rs[i].Err == nil {
			rs[i].Err = err
		}
	}
}

// rangeErr wraps a failed range's error with what was being read.
func rangeErr(what string, addr uint64, err error) error {
	return fmt.Errorf("%s at %#x: %w: %w", what, addr, ErrUnreadable, err)
}

// layout resolves symbols, offsets and sizes, keeping the first failure so a
// caller can resolve a whole set and check once.
type layout struct {
	t   Target
	err error
}

func (l *layout) sym(name string) uint64 {
	v, err := l.t.Symbol(name)
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("symbol %s: %w: %w", name, ErrLayout, err)
	}
	return v
}

func (l *layout) off(typ, member string) uint64 {
	v, err := l.t.Offset(typ, member)
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("member %s.%s: %w: %w", typ, member, ErrLayout, err)
	}
	return v
}

func (l *layout) size(typ string) uint64 {
	v, err := l.t.Size(typ)
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("size of %s: %w: %w", typ, ErrLayout, err)
	}
	return v
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// span is the byte window [lo, hi) of an object that a walk reads in one range.
type span struct{ lo, hi uint64 }

// spanOf covers every field (offset, size) given.
func spanOf(fields ...[2]uint64) span {
	s := span{lo: ^uint64(0)}
	for _, f := range fields {
		s.lo = min(s.lo, f[0])
		s.hi = max(s.hi, f[0]+f[1])
	}
	return s
}

// field reads size bytes at object offset off from a buffer holding span s.
func (s span) u64(buf []byte, off uint64) uint64 { return le.Uint64(buf[off-s.lo:]) }
func (s span) u32(buf []byte, off uint64) uint32 { return le.Uint32(buf[off-s.lo:]) }
func (s span) bytes(buf []byte, off, n uint64) []byte {
	return buf[off-s.lo : off-s.lo+n]
}
