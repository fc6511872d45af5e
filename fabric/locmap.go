package fabric

import (
	"fmt"
	"os"
	"sync/atomic"
)

// Locations is the read side of a location map: what the read protocol needs.
type Locations interface {
	// Load atomically loads the word of g, or InvalidWord if g is beyond the map.
	Load(g GFN) Word
	// Len is the number of GFNs the map covers.
	Len() uint64
}

// LocationMap is the writable location map of one VM: one word per GFN in a
// sealed memfd (it can neither grow nor shrink), written by the one runtime
// that owns the VM and mapped read-only by any number of readers, in this or
// other processes (see ReadOnlyFile and OpenLocationMapReadOnly).
type LocationMap struct {
	file  *os.File
	mem   []byte
	words []uint64
}

// LocationView is a read-only mapping of a location map.
type LocationView struct {
	mem   []byte
	words []uint64
}

var (
	_ Locations = (*LocationMap)(nil)
	_ Locations = (*LocationView)(nil)
)

// Len is the number of GFNs the map covers.
func (m *LocationMap) Len() uint64 { return uint64(len(m.words)) }

// Load atomically loads the word of g, or InvalidWord if g is beyond the map.
func (m *LocationMap) Load(g GFN) Word { return load(m.words, g) }

// Store atomically publishes w as the location of g. Readers that loaded the
// previous word will see the change on their recheck and retry.
func (m *LocationMap) Store(g GFN, w Word) error {
	if uint64(g) >= uint64(len(m.words)) {
		return fmt.Errorf("store gfn %#x (map of %d): %w", uint64(g), len(m.words), ErrGFNRange)
	}
	if !w.Valid() {
		return fmt.Errorf("store gfn %#x: word %v: %w", uint64(g), w, ErrBadLocation)
	}
	atomic.StoreUint64(&m.words[g], uint64(w))
	return nil
}

// CompareAndSwap stores w as the location of g if it is still old.
func (m *LocationMap) CompareAndSwap(g GFN, old, w Word) (bool, error) {
	if uint64(g) >= uint64(len(m.words)) {
		return false, fmt.Errorf("swap gfn %#x (map of %d): %w", uint64(g), len(m.words), ErrGFNRange)
	}
	if !w.Valid() {
		return false, fmt.Errorf("swap gfn %#x: word %v: %w", uint64(g), w, ErrBadLocation)
	}
	return atomic.CompareAndSwapUint64(&m.words[g], uint64(old), uint64(w)), nil
}

// File is the read-write memfd. Hand readers ReadOnlyFile instead.
func (m *LocationMap) File() *os.File { return m.file }

// Len is the number of GFNs the map covers.
func (v *LocationView) Len() uint64 { return uint64(len(v.words)) }

// Load atomically loads the word of g, or InvalidWord if g is beyond the map.
func (v *LocationView) Load(g GFN) Word { return load(v.words, g) }

func load(words []uint64, g GFN) Word {
	if uint64(g) >= uint64(len(words)) {
		return InvalidWord
	}
	return Word(atomic.LoadUint64(&words[g]))
}
