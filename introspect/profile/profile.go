package profile

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
)

// Profile is one kernel build's symbols (link-time addresses) and type
// layout. It is immutable and safe for concurrent use.
type Profile struct {
	release string
	first   map[string]uint64 // first kallsyms entry of each name
	sorted  []kallsym         // by address, as kallsyms stores them
	types   *types
	sum     [sha256.Size]byte
}

func newProfile(release string, syms []kallsym, btfRaw []byte) (*Profile, error) {
	ty, err := loadTypes(btfRaw)
	if err != nil {
		return nil, err
	}
	p := &Profile{release: release, first: make(map[string]uint64, len(syms)), types: ty}
	// kallsyms stores its entries by address, so syms is normally in order
	// already and is kept as it is (the caller hands it over and only reads
	// it afterwards); a 7.x kernel has 200,000 of them.
	byAddr := func(a, b kallsym) int { return cmp.Compare(a.addr, b.addr) }
	p.sorted = syms
	if !slices.IsSortedFunc(syms, byAddr) {
		p.sorted = slices.Clone(syms)
		slices.SortStableFunc(p.sorted, byAddr)
	}
	h := sha256.New()
	fmt.Fprintf(h, "release %s\n", release)
	var w [9]byte
	for _, s := range syms {
		if _, dup := p.first[s.name]; !dup {
			p.first[s.name] = s.addr
		}
		h.Write([]byte(s.name))
		w[0] = s.typ
		binary.LittleEndian.PutUint64(w[1:], s.addr)
		h.Write(w[:])
	}
	bs := sha256.Sum256(btfRaw)
	h.Write(bs[:])
	copy(p.sum[:], h.Sum(nil))
	return p, nil
}

// Release is the kernel release string ("6.1.0-56-amd64"), or "" if the
// banner was not found.
func (p *Profile) Release() string { return p.release }

// SymbolCount is the number of kallsyms entries.
func (p *Profile) SymbolCount() int { return len(p.sorted) }

// Symbol returns the link-time virtual address of name; where several
// symbols share a name (static functions), the first in kallsyms order.
func (p *Profile) Symbol(name string) (uint64, error) {
	a, ok := p.first[name]
	if !ok {
		return 0, fmt.Errorf("symbol %s: %w", name, ErrNoSymbol)
	}
	return a, nil
}

// Lookup names the symbol containing link address addr: the last symbol at
// or below it, and addr's distance from it.
func (p *Profile) Lookup(addr uint64) (name string, off uint64, ok bool) {
	i := sort.Search(len(p.sorted), func(i int) bool { return p.sorted[i].addr > addr })
	if i == 0 {
		return "", 0, false
	}
	s := p.sorted[i-1]
	return s.name, addr - s.addr, true
}

// Offset returns the byte offset of member (a dotted path, array elements
// as name[i]) in struct or union typ; anonymous members are searched.
func (p *Profile) Offset(typ, member string) (uint64, error) { return p.types.offset(typ, member) }

// Size returns the size in bytes of type typ.
func (p *Profile) Size(typ string) (uint64, error) { return p.types.size(typ) }

// Fingerprint identifies the build: a hash of the release, every kallsyms
// entry (name, type, link address) and the raw BTF.
func (p *Profile) Fingerprint() string { return hex.EncodeToString(p.sum[:]) }

// Equal reports whether p and q describe the same kernel build.
func (p *Profile) Equal(q *Profile) bool { return p != nil && q != nil && p.sum == q.sum }
