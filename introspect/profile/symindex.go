package profile

import (
	"hash/maphash"
	"math/bits"
)

// symIndex finds kallsyms entries by name. It is an open-addressing table of
// entry numbers, not a map[string]…: a 7.x kernel has 200,000 symbols, and
// a map of them cost more to build (and to collect) than decoding them.
// Entries that share a name (static functions) are all in the table, in
// kallsyms order along their probe sequence, so the first one found is
// the first in kallsyms.
type symIndex struct {
	syms  symbols
	slots []uint32 // entry number + 1; 0 is an empty slot
	mask  uint64
	seed  maphash.Seed
}

func newSymIndex(syms symbols) *symIndex {
	// At most half full, so probe runs stay short.
	size := uint64(1) << bits.Len64(uint64(2*syms.len()))
	x := &symIndex{syms: syms, slots: make([]uint32, size), mask: size - 1, seed: maphash.MakeSeed()}
	for i, e := range syms.ents {
		h := maphash.String(x.seed, syms.name(e)) & x.mask
		for x.slots[h] != 0 {
			h = (h + 1) & x.mask
		}
		x.slots[h] = uint32(i + 1)
	}
	return x
}

// each calls f with every entry named name, in kallsyms order, until f
// returns false.
func (x *symIndex) each(name string, f func(e symEnt) bool) {
	h := maphash.String(x.seed, name) & x.mask
	for ; x.slots[h] != 0; h = (h + 1) & x.mask {
		if e := x.syms.ents[x.slots[h]-1]; int(e.n) == len(name) && x.syms.name(e) == name && !f(e) {
			return
		}
	}
}

// hasAt reports whether some entry is named name (in bytes, read in place
// from memory: the same hash, no string made) and whether one of those
// is at addr.
func (x *symIndex) hasAt(name []byte, addr uint64) (named, at bool) {
	h := maphash.Bytes(x.seed, name) & x.mask
	for ; x.slots[h] != 0; h = (h + 1) & x.mask {
		if e := x.syms.ents[x.slots[h]-1]; int(e.n) == len(name) && x.syms.name(e) == string(name) {
			named = true
			if e.addr == addr {
				return true, true
			}
		}
	}
	return named, false
}

// first is the address of the first entry named name.
func (x *symIndex) first(name string) (addr uint64, ok bool) {
	x.each(name, func(e symEnt) bool {
		addr, ok = e.addr, true
		return false
	})
	return addr, ok
}
