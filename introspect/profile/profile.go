package profile

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Profile is one kernel build's symbols (link-time addresses) and type
// layout. It is immutable and safe for concurrent use.
type Profile struct {
	release string
	byName  *symIndex // over the entries in kallsyms order
	sorted  []symEnt  // by address, as kallsyms stores them; names in byName.syms
	types   *types
	btfSum  [sha256.Size]byte
	sumOnce sync.Once
	sum     [sha256.Size]byte // Fingerprint's, made on first use
}

// newProfile builds the profile of a decoded kallsyms (syms and its
// index byName) and the BTF that parse reads. check, if not nil, is a
// test of the symbols that runs while the BTF is parsed (neither needs
// the other); its error fails the build.
func newProfile(release string, syms symbols, byName *symIndex, parse func() (*types, [sha256.Size]byte, error), check func() error) (*Profile, error) {
	checked := make(chan error, 1)
	go func() {
		if check == nil {
			checked <- nil
			return
		}
		checked <- check()
	}()
	ty, btfSum, err := parse()
	if cerr := <-checked; cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	p := &Profile{release: release, byName: byName, types: ty, btfSum: btfSum}
	// kallsyms stores its entries by address, so syms is normally in order
	// already and is kept as it is (the caller hands it over and only reads
	// it afterwards); a 7.x kernel has 200,000 of them.
	byAddr := func(a, b symEnt) int { return cmp.Compare(a.addr, b.addr) }
	p.sorted = syms.ents
	if !slices.IsSortedFunc(syms.ents, byAddr) {
		p.sorted = slices.Clone(syms.ents)
		slices.SortStableFunc(p.sorted, byAddr)
	}
	return p, nil
}

// parseBTF parses a raw BTF blob and hashes it for the fingerprint.
func parseBTF(raw []byte) (*types, [sha256.Size]byte, error) {
	ty, err := loadTypes(raw)
	return ty, sha256.Sum256(raw), err
}

// fingerprint hashes the release, every kallsyms entry in kallsyms order
// and the BTF's hash. Nothing needs it to read a guest, so it is made on
// first use, not with the profile.
func (p *Profile) fingerprint() [sha256.Size]byte {
	p.sumOnce.Do(func() {
		h := sha256.New()
		fmt.Fprintf(h, "release %s\n", p.release)
		// Entries are written in batches: 200,000 small writes to the
		// hash cost more than the hashing.
		buf := make([]byte, 0, 64<<10)
		syms := p.byName.syms
		for _, e := range syms.ents {
			if len(buf)+int(e.n)+9 > cap(buf) {
				h.Write(buf)
				buf = buf[:0]
			}
			buf = append(buf, syms.name(e)...)
			buf = append(buf, e.typ)
			buf = binary.LittleEndian.AppendUint64(buf, e.addr)
		}
		h.Write(buf)
		h.Write(p.btfSum[:])
		copy(p.sum[:], h.Sum(nil))
	})
	return p.sum
}

// Release is the kernel release string ("6.1.0-56-amd64"), or "" if the
// banner was not found.
func (p *Profile) Release() string { return p.release }

// SymbolCount is the number of kallsyms entries.
func (p *Profile) SymbolCount() int { return len(p.sorted) }

// Symbol returns the link-time virtual address of name; where several
// symbols share a name (static functions), the first in kallsyms order.
func (p *Profile) Symbol(name string) (uint64, error) {
	a, ok := p.byName.first(name)
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
	e := p.sorted[i-1]
	return p.byName.syms.name(e), addr - e.addr, true
}

// Offset returns the byte offset of member (a dotted path, array elements
// as name[i]) in struct or union typ; anonymous members are searched.
func (p *Profile) Offset(typ, member string) (uint64, error) { return p.types.offset(typ, member) }

// Size returns the size in bytes of type typ.
func (p *Profile) Size(typ string) (uint64, error) { return p.types.size(typ) }

// Fingerprint identifies the build: a hash of the release, every kallsyms
// entry (name, type, link address) and the raw BTF.
func (p *Profile) Fingerprint() string {
	sum := p.fingerprint()
	return hex.EncodeToString(sum[:])
}

// Equal reports whether p and q describe the same kernel build.
func (p *Profile) Equal(q *Profile) bool {
	return p != nil && q != nil && p.fingerprint() == q.fingerprint()
}
