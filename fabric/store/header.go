package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// MaxSlots is the largest region: every slot must be nameable by the slot
// field of a location word (2^36 slots of 4 KiB, 256 TiB).
const MaxSlots = fabric.MaxSlot + 1

const (
	headerSize    = 32
	formatVersion = 1
)

var (
	headerMagic = [8]byte{'V', 'M', 'T', 'S', 'L', 'O', 'T', 'S'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// header is the content of a region's meta file.
//
//	0  magic "VMTSLOTS"
//	8  format version, uint32 little endian
//	12 page size, uint32
//	16 slot count, uint64
//	24 CRC-32C of bytes 0..24, uint32
//	28 zero
type header struct {
	slots uint64
}

func (h header) marshal() []byte {
	b := make([]byte, headerSize)
	copy(b, headerMagic[:])
	binary.LittleEndian.PutUint32(b[8:], formatVersion)
	binary.LittleEndian.PutUint32(b[12:], fabric.PageSize)
	binary.LittleEndian.PutUint64(b[16:], h.slots)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	return b
}

func parseHeader(b []byte) (header, error) {
	if len(b) != headerSize {
		return header{}, fmt.Errorf("meta is %d bytes, want %d: %w", len(b), headerSize, ErrCorrupt)
	}
	if !bytes.Equal(b[:8], headerMagic[:]) {
		return header{}, fmt.Errorf("meta has bad magic %q: %w", b[:8], ErrCorrupt)
	}
	if got, want := binary.LittleEndian.Uint32(b[24:]), crc32.Checksum(b[:24], castagnoli); got != want {
		return header{}, fmt.Errorf("meta checksum %08x, want %08x: %w", got, want, ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != formatVersion {
		return header{}, fmt.Errorf("meta format version %d, want %d: %w", v, formatVersion, ErrCorrupt)
	}
	if ps := binary.LittleEndian.Uint32(b[12:]); ps != fabric.PageSize {
		return header{}, fmt.Errorf("meta page size %d, want %d: %w", ps, fabric.PageSize, ErrCorrupt)
	}
	if binary.LittleEndian.Uint32(b[28:]) != 0 {
		return header{}, fmt.Errorf("meta reserved bytes not zero: %w", ErrCorrupt)
	}
	h := header{slots: binary.LittleEndian.Uint64(b[16:])}
	if h.slots == 0 || h.slots > MaxSlots {
		return header{}, fmt.Errorf("meta slot count %d outside 1..%d: %w", h.slots, uint64(MaxSlots), ErrCorrupt)
	}
	return h, nil
}
