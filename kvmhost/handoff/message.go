package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// Version is the message version this package speaks.
const Version = 1

// MessageSize is the size of a handoff message.
const MessageSize = 32

const pageSize = 4096

// Errors of the handoff.
var (
	// ErrMessage reports a malformed handoff message.
	ErrMessage = errors.New("malformed guest ram handoff")
	// ErrPeer reports a peer that may not hand over (another user).
	ErrPeer = errors.New("guest ram handoff peer refused")
)

// Message is the range a VMM handed over: its mapping of the RAM memfd.
type Message struct {
	Addr   uint64 // start of the mapping in the VMM's address space
	Length uint64 // bytes mapped
	Offset uint64 // file offset the mapping starts at
}

// ParseMessage decodes and validates a handoff message.
func ParseMessage(b []byte) (Message, error) {
	if len(b) != MessageSize {
		return Message{}, fmt.Errorf("%d bytes, want %d: %w", len(b), MessageSize, ErrMessage)
	}
	if string(b[:4]) != "VMTH" {
		return Message{}, fmt.Errorf("magic %q: %w", b[:4], ErrMessage)
	}
	if v := binary.NativeEndian.Uint32(b[4:]); v != Version {
		return Message{}, fmt.Errorf("version %d, this runtime speaks %d: %w", v, Version, ErrMessage)
	}
	m := Message{Addr: binary.NativeEndian.Uint64(b[8:]), Length: binary.NativeEndian.Uint64(b[16:]), Offset: binary.NativeEndian.Uint64(b[24:])}
	switch {
	case m.Length == 0 || m.Addr%pageSize != 0 || m.Length%pageSize != 0 || m.Offset%pageSize != 0:
		return Message{}, fmt.Errorf("range %#x+%#x at offset %#x is empty or not page aligned: %w", m.Addr, m.Length, m.Offset, ErrMessage)
	case m.Addr+m.Length < m.Addr || m.Offset+m.Length < m.Offset:
		return Message{}, fmt.Errorf("range %#x+%#x at offset %#x wraps: %w", m.Addr, m.Length, m.Offset, ErrMessage)
	}
	return m, nil
}

// AppendMessage encodes m (the preload library's side, for tests and
// other VMM launchers written in Go).
func AppendMessage(b []byte, m Message) []byte {
	b = append(b, "VMTH"...)
	b = binary.NativeEndian.AppendUint32(b, Version)
	b = binary.NativeEndian.AppendUint64(b, m.Addr)
	b = binary.NativeEndian.AppendUint64(b, m.Length)
	return binary.NativeEndian.AppendUint64(b, m.Offset)
}

// Space is a VMM's guest RAM as handed over: the userfaultfd registered on
// its mapping, the memfd, and the range.
type Space struct {
	Message
	UFFD *os.File
	RAM  *os.File
}

// Close closes both descriptors.
func (s *Space) Close() error {
	return errors.Join(closeFile(s.UFFD), closeFile(s.RAM))
}

func closeFile(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
