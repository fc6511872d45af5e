package fabric

import (
	"fmt"
	"strconv"
)

// Word is the 64-bit location of one guest frame, as stored in the
// location map. Its bit layout, least significant first:
//
//	bits  0..1   state: 0 local, 1 remote, 2 moving, 3 invalid
//	bits  2..9   sub-host id (0..255)
//	bits 10..45  slot in the sub-host's region (36 bits: 2^36 slots, 256 TiB)
//	bits 46..63  generation (18 bits), changed by every move, wraps
//
// The zero word is a local page of generation 0, so a fresh (all-zero) map
// says every page is local. A local word has sub-host and slot zero. A
// moving word may carry the sub-host and slot of the remote side of the
// move, for the writer's bookkeeping; readers never read a moving page, they
// retry. State 3 is never written: InvalidWord (all ones) is what a load of
// a GFN outside the map returns.
//
// The generation makes a word unique per move: a reader that sees the same
// word before and after reading knows no move happened in between, unless
// 2^18 moves of that one frame ended up at the very same place meanwhile.
type Word uint64

// State says where a frame's content is.
type State uint8

// The states of a location word.
const (
	StateLocal   State = 0 // in the main host's guest RAM
	StateRemote  State = 1 // in a sub-host slot
	StateMoving  State = 2 // being paged in or out; readers retry
	StateInvalid State = 3 // never stored; see InvalidWord
)

// Field widths and limits of a location word.
const (
	stateBits   = 2
	subHostBits = 8
	slotBits    = 36
	genBits     = 64 - stateBits - subHostBits - slotBits

	subHostShift = stateBits
	slotShift    = subHostShift + subHostBits
	genShift     = slotShift + slotBits

	// MaxSubHost is the largest sub-host id.
	MaxSubHost = 1<<subHostBits - 1
	// MaxSlot is the largest slot number a word can name.
	MaxSlot = 1<<slotBits - 1
	// GenMask masks a generation to its 18 bits.
	GenMask = 1<<genBits - 1
)

// InvalidWord is returned for frames outside a location map.
const InvalidWord = Word(^uint64(0))

// Location is a decoded location word.
type Location struct {
	State   State
	SubHost uint8
	Slot    uint64
	Gen     uint32
}

// State of the word.
func (w Word) State() State { return State(w & (1<<stateBits - 1)) }

// SubHost id of the word (0 for a local page).
func (w Word) SubHost() uint8 { return uint8(w >> subHostShift) }

// Slot of the word (0 for a local page).
func (w Word) Slot() uint64 { return uint64(w>>slotShift) & MaxSlot }

// Gen is the generation of the word.
func (w Word) Gen() uint32 { return uint32(w >> genShift) }

// Valid reports whether the word is one a writer may store: a known state,
// and a local word with zero sub-host and slot.
func (w Word) Valid() bool {
	switch w.State() {
	case StateLocal:
		return w.SubHost() == 0 && w.Slot() == 0
	case StateRemote, StateMoving:
		return true
	}
	return false
}

// Decode splits the word into its fields. Any word decodes; see Valid.
func (w Word) Decode() Location {
	return Location{State: w.State(), SubHost: w.SubHost(), Slot: w.Slot(), Gen: w.Gen()}
}

// Encode packs the location into a word, refusing fields that do not fit
// or a local location that names a sub-host or slot.
func (l Location) Encode() (Word, error) {
	if l.State >= StateInvalid {
		return InvalidWord, fmt.Errorf("location state %d: %w", l.State, ErrBadLocation)
	}
	if l.Slot > MaxSlot {
		return InvalidWord, fmt.Errorf("location slot %d beyond %d: %w", l.Slot, uint64(MaxSlot), ErrBadLocation)
	}
	if l.Gen > GenMask {
		return InvalidWord, fmt.Errorf("location generation %d beyond %d: %w", l.Gen, GenMask, ErrBadLocation)
	}
	if l.State == StateLocal && (l.SubHost != 0 || l.Slot != 0) {
		return InvalidWord, fmt.Errorf("local location with sub-host %d slot %d: %w", l.SubHost, l.Slot, ErrBadLocation)
	}
	return pack(l.State, l.SubHost, l.Slot, l.Gen), nil
}

func pack(s State, sub uint8, slot uint64, gen uint32) Word {
	return Word(uint64(s) | uint64(sub)<<subHostShift | (slot&MaxSlot)<<slotShift | uint64(gen&GenMask)<<genShift)
}

// LocalWord is a local location of generation gen (masked to 18 bits).
func LocalWord(gen uint32) Word { return pack(StateLocal, 0, 0, gen) }

// RemoteWord is a location in slot of sub-host sub, generation gen (masked).
func RemoteWord(sub uint8, slot uint64, gen uint32) (Word, error) {
	if slot > MaxSlot {
		return InvalidWord, fmt.Errorf("remote slot %d beyond %d: %w", slot, uint64(MaxSlot), ErrSlotRange)
	}
	return pack(StateRemote, sub, slot, gen), nil
}

// NextGen is the generation after gen, wrapping at 18 bits.
func NextGen(gen uint32) uint32 { return (gen + 1) & GenMask }

// ToMoving is the word that marks a move starting from w: state moving,
// next generation, keeping w's sub-host and slot (the remote side of a
// page-in; a page-out writer may use MovingTo instead).
func (w Word) ToMoving() Word { return pack(StateMoving, w.SubHost(), w.Slot(), NextGen(w.Gen())) }

// MovingTo is the word that marks a page-out from w towards slot of sub.
func (w Word) MovingTo(sub uint8, slot uint64) (Word, error) {
	if slot > MaxSlot {
		return InvalidWord, fmt.Errorf("moving slot %d beyond %d: %w", slot, uint64(MaxSlot), ErrSlotRange)
	}
	return pack(StateMoving, sub, slot, NextGen(w.Gen())), nil
}

// ToLocal is the word that ends a move at the main host: local, next generation.
func (w Word) ToLocal() Word { return LocalWord(NextGen(w.Gen())) }

// ToRemote is the word that ends a move at slot of sub: remote, next generation.
func (w Word) ToRemote(sub uint8, slot uint64) (Word, error) {
	return RemoteWord(sub, slot, NextGen(w.Gen()))
}

// String renders the word as "local@g7", "remote:3/1234@g8", "moving:3/1234@g9"
// or "invalid(0x...)".
func (w Word) String() string {
	gen := "@g" + strconv.FormatUint(uint64(w.Gen()), 10)
	switch {
	case !w.Valid():
		return "invalid(0x" + strconv.FormatUint(uint64(w), 16) + ")"
	case w.State() == StateLocal:
		return "local" + gen
	case w.State() == StateRemote:
		return fmt.Sprintf("remote:%d/%d%s", w.SubHost(), w.Slot(), gen)
	default:
		return fmt.Sprintf("moving:%d/%d%s", w.SubHost(), w.Slot(), gen)
	}
}

// String names the state.
func (s State) String() string {
	switch s {
	case StateLocal:
		return "local"
	case StateRemote:
		return "remote"
	case StateMoving:
		return "moving"
	}
	return "invalid"
}
