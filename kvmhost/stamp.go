package kvmhost

import (
	"encoding/binary"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// A workload write stamps a whole page with (gfn, seq). Every byte of a
// stamp has its high bit set, so no ASCII signature can match workload data,
// and every byte is a function of (gfn, seq), so a copy of a page taken while
// the workload was rewriting it (a torn copy) never verifies:
//
//	word 0        head magic
//	word 1        gfn, 7 bits per byte
//	word 2        seq, 7 bits per byte (the seqlock's begin)
//	words 3..509  body, a hash of (gfn, seq, index)
//	word 510      seq again (the seqlock's end)
//	word 511      tail magic
//
// A writer stores the words in ascending order, head magic first, so a
// reader copying forward (as copy() does) that catches an image page being
// stamped for the first time sees the head magic unless the writer
// overtook it mid-copy.
//
// The reading rule: a page is sound if it equals the image's content or
// VerifyStamp accepts it. A page that is neither may have been copied while
// the workload wrote it (IsStamped says so when the copy caught the head
// already written, but a copy that read the head just before the first
// stamp of an image page looks like neither): read it again, and call it
// corrupt only if it stays neither over repeated reads. (The location-word
// read protocol only guarantees the page did not move during the read.)
const (
	stampWords = fabric.PageSize / 8
	headMagic  = 0xF1E2D3C4B5A69788
	tailMagic  = 0x8897A6B5C4D3E2F1
	highBits   = 0x8080808080808080
	seqWord    = 2
	seqEndWord = stampWords - 2
)

// spread puts the low 56 bits of x in 8 bytes of 7 bits, high bit set.
func spread(x uint64) uint64 {
	var w uint64
	for i := range 8 {
		w |= (x >> (7 * i) & 0x7f) << (8 * i)
	}
	return w | highBits
}

func unspread(w uint64) uint64 {
	var x uint64
	for i := range 8 {
		x |= (w >> (8 * i) & 0x7f) << (7 * i)
	}
	return x
}

func bodyWord(gfn fabric.GFN, seq uint64, i int) uint64 {
	z := uint64(gfn)*0x9E3779B97F4A7C15 ^ seq*0xBF58476D1CE4E5B9 ^ uint64(i)*0x94D049BB133111EB
	z ^= z >> 31
	z *= 0xD6E8FEB86659FD93
	z ^= z >> 29
	return z | highBits
}

// stampWordsInto computes the stamp of (gfn, seq) word by word, in the
// ascending order a writer stores them.
func stampWordsInto(gfn fabric.GFN, seq uint64, store func(i int, w uint64)) {
	store(0, headMagic)
	store(1, spread(uint64(gfn)))
	store(seqWord, spread(seq))
	for i := 3; i < seqEndWord; i++ {
		store(i, bodyWord(gfn, seq, i))
	}
	store(seqEndWord, spread(seq))
	store(stampWords-1, tailMagic)
}

// Stamp writes the stamp of (gfn, seq) into page (one page).
func Stamp(page []byte, gfn fabric.GFN, seq uint64) {
	stampWordsInto(gfn, seq, func(i int, w uint64) { binary.LittleEndian.PutUint64(page[8*i:], w) })
}

// IsStamped reports whether page carries a workload stamp's head, whole or
// torn.
func IsStamped(page []byte) bool {
	return len(page) == fabric.PageSize && binary.LittleEndian.Uint64(page) == headMagic
}

// StampSeq is the sequence number in a stamped page's head.
func StampSeq(page []byte) uint64 {
	return unspread(binary.LittleEndian.Uint64(page[8*seqWord:]))
}

// VerifyStamp reports whether page is exactly one complete stamp of gfn.
func VerifyStamp(gfn fabric.GFN, page []byte) bool {
	if !IsStamped(page) {
		return false
	}
	le := binary.LittleEndian
	seq := StampSeq(page)
	if le.Uint64(page[8:]) != spread(uint64(gfn)) || le.Uint64(page[8*seqEndWord:]) != spread(seq) ||
		le.Uint64(page[8*(stampWords-1):]) != tailMagic {
		return false
	}
	for i := 3; i < seqEndWord; i++ {
		if le.Uint64(page[8*i:]) != bodyWord(gfn, seq, i) {
			return false
		}
	}
	return true
}
