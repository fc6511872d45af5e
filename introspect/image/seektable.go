package image

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The zstd seekable format (zstd's contrib/seekable_format): independent
// zstd frames followed by a skippable frame holding a seek table, one entry
// per frame (compressed size, decompressed size, optional checksum) and a
// 9-byte footer. Plain zstd tools read such a file as the concatenation of
// its frames; a reader that knows the table decompresses only the frames it
// reads.
const (
	seekTableMagic     = 0x184D2A5E // skippable frame, nibble E
	seekableMagic      = 0x8F92EAB1
	seekFooterSize     = 9
	skippableHeader    = 8
	seekChecksumFlag   = 0x80
	seekReservedBits   = 0x7C
	maxSeekFrames      = 1 << 26 // 64 Mi frames: 64 TiB at 1 MiB a frame
	seekEntrySize      = 8
	seekEntryCheckSize = 12
)

// seekFrame is one frame of a seekable zstd file: where its compressed bytes
// lie in the file and where its content lies in the decompressed stream.
type seekFrame struct {
	comp, decomp       uint64
	compLen, decompLen uint32
}

// hasSeekFooter reports whether the file of size bytes ends like a seekable
// zstd file. It reads 9 bytes.
func hasSeekFooter(f io.ReaderAt, size int64) bool {
	if size < skippableHeader+seekFooterSize {
		return false
	}
	var foot [4]byte
	if _, err := f.ReadAt(foot[:], size-4); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(foot[:]) == seekableMagic
}

// parseSeekTable reads the seek table of a seekable zstd file of size bytes
// and checks that its frames tile the file before the table exactly and
// expand to at most limit bytes in all.
func parseSeekTable(f io.ReaderAt, size int64, limit uint64) ([]seekFrame, error) {
	if size < skippableHeader+seekFooterSize {
		return nil, fmt.Errorf("seek table: file of %d bytes too short: %w", size, ErrFormat)
	}
	var foot [seekFooterSize]byte
	if _, err := f.ReadAt(foot[:], size-seekFooterSize); err != nil {
		return nil, fmt.Errorf("seek table: read footer: %w", err)
	}
	return decodeSeekTable(f, size, foot[:], limit)
}

func decodeSeekTable(f io.ReaderAt, size int64, foot []byte, limit uint64) ([]seekFrame, error) {
	le := binary.LittleEndian
	if le.Uint32(foot[5:]) != seekableMagic {
		return nil, fmt.Errorf("seek table: footer magic %#x: %w", le.Uint32(foot[5:]), ErrFormat)
	}
	n := uint64(le.Uint32(foot[0:]))
	desc := foot[4]
	if desc&seekReservedBits != 0 {
		return nil, fmt.Errorf("seek table: reserved descriptor bits set (%#x): %w", desc, ErrFormat)
	}
	entry := uint64(seekEntrySize)
	if desc&seekChecksumFlag != 0 {
		entry = seekEntryCheckSize
	}
	if n > maxSeekFrames {
		return nil, fmt.Errorf("seek table: %d frames, more than %d: %w", n, maxSeekFrames, ErrFormat)
	}
	tableLen := n*entry + seekFooterSize
	if tableLen+skippableHeader > uint64(size) {
		return nil, fmt.Errorf("seek table: %d frames do not fit a %d-byte file: %w", n, size, ErrFormat)
	}
	start := uint64(size) - tableLen - skippableHeader
	buf := make([]byte, skippableHeader+n*entry)
	if _, err := f.ReadAt(buf, int64(start)); err != nil {
		return nil, fmt.Errorf("seek table: read %d entries: %w", n, err)
	}
	if m := le.Uint32(buf); m != seekTableMagic {
		return nil, fmt.Errorf("seek table: skippable frame magic %#x: %w", m, ErrFormat)
	}
	if l := uint64(le.Uint32(buf[4:])); l != tableLen {
		return nil, fmt.Errorf("seek table: frame size %d, %d frames need %d: %w", l, n, tableLen, ErrFormat)
	}
	frames := make([]seekFrame, 0, n)
	var comp, decomp uint64
	for i := range n {
		e := buf[skippableHeader+i*entry:]
		fr := seekFrame{comp: comp, decomp: decomp, compLen: le.Uint32(e), decompLen: le.Uint32(e[4:])}
		comp += uint64(fr.compLen)
		decomp += uint64(fr.decompLen)
		if decomp > limit {
			return nil, tooLarge("seekable zstd", fmt.Sprintf("declares %d bytes by frame %d", decomp, i), limit)
		}
		if fr.decompLen > 0 && fr.compLen == 0 {
			return nil, fmt.Errorf("seek table: frame %d has %d bytes of content and none compressed: %w", i, fr.decompLen, ErrFormat)
		}
		frames = append(frames, fr)
	}
	if comp != start {
		return nil, fmt.Errorf("seek table: frames hold %d bytes, the file %d before its table: %w", comp, start, ErrFormat)
	}
	return frames, nil
}

// appendSeekTable appends the seek table of frames (compressed and
// decompressed sizes, no checksums) to dst.
func appendSeekTable(dst []byte, sizes [][2]uint32) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, seekTableMagic)
	dst = le.AppendUint32(dst, uint32(len(sizes)*seekEntrySize+seekFooterSize))
	for _, s := range sizes {
		dst = le.AppendUint32(dst, s[0])
		dst = le.AppendUint32(dst, s[1])
	}
	dst = le.AppendUint32(dst, uint32(len(sizes)))
	dst = append(dst, 0)
	return le.AppendUint32(dst, seekableMagic)
}
