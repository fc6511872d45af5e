package profile

// kallsym is one kallsyms entry as the decoder's callers see it.
type kallsym struct {
	name string
	typ  byte
	addr uint64
}

// symEnt is one kallsyms entry as a profile stores it: 16 bytes and no
// pointers, the name an offset into the table's one string. A 7.x kernel
// has 200,000 entries: with a string each they were twice the memory to
// fault in, and the collector scanned them all on every cycle.
type symEnt struct {
	addr uint64
	off  uint32 // of the name in symbols.names
	n    uint16 // name length (KSYM_NAME_LEN is 512)
	typ  byte
}

// symbols is a decoded kallsyms: its entries in kallsyms order and the
// names they point into.
type symbols struct {
	names string
	ents  []symEnt
}

func (s symbols) len() int { return len(s.ents) }

// name is entry e's name.
func (s symbols) name(e symEnt) string { return s.names[e.off : e.off+uint32(e.n)] }

// at is entry i.
func (s symbols) at(i int) kallsym {
	e := s.ents[i]
	return kallsym{name: s.name(e), typ: e.typ, addr: e.addr}
}

// first is the address of the first entry named name, found by walking
// them all: for the few lookups made before an index is worth building.
func (s symbols) first(name string) (uint64, bool) {
	for _, e := range s.ents {
		if int(e.n) == len(name) && s.name(e) == name {
			return e.addr, true
		}
	}
	return 0, false
}
