package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Errors of the control layer that have no fabric sentinel.
var (
	// ErrNoRegion reports an open of a region that does not exist (slots 0).
	ErrNoRegion = errors.New("no such region")
	// ErrNotOpen reports a data request before the region was opened.
	ErrNotOpen = errors.New("region not open")
	// ErrRegion reports a region that cannot be opened or created as asked.
	ErrRegion = errors.New("region unavailable")
	// ErrServer reports a server-side failure without a more precise code.
	ErrServer = errors.New("sub-host error")
)

// Code is the wire form of an error; zero means success.
type Code uint8

// Status and error codes.
const (
	CodeOK Code = iota
	CodeSlotRange
	CodeBufferSize
	CodeAuth
	CodeForbidden
	CodeProtocol
	CodeNoRDMA
	CodeNoRegion
	CodeNotOpen
	CodeRegion
	CodeServer
	codeLimit
)

var codeErrs = [...]error{
	CodeSlotRange:  fabric.ErrSlotRange,
	CodeBufferSize: fabric.ErrBufferSize,
	CodeAuth:       fabric.ErrAuth,
	CodeForbidden:  fabric.ErrForbidden,
	CodeProtocol:   fabric.ErrProtocol,
	CodeNoRDMA:     fabric.ErrNoRDMA,
	CodeNoRegion:   ErrNoRegion,
	CodeNotOpen:    ErrNotOpen,
	CodeRegion:     ErrRegion,
	CodeServer:     ErrServer,
}

// CodeOf maps an error to the code that carries it on the wire.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for c := CodeSlotRange; c < codeLimit; c++ {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	return CodeServer
}

// Err maps a code back to its sentinel error; nil for CodeOK, ErrServer for unknown codes.
func (c Code) Err() error {
	if c == CodeOK {
		return nil
	}
	if c < codeLimit {
		return codeErrs[c]
	}
	return ErrServer
}

// MaxErrorText bounds the message of an Error frame.
const MaxErrorText = 512

// AppendError encodes an Error frame payload for err.
func AppendError(b []byte, err error) []byte {
	msg := err.Error()
	if len(msg) > MaxErrorText {
		msg = msg[:MaxErrorText]
	}
	b = append(b, byte(CodeOf(err)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// ParseError decodes an Error frame payload into an error wrapping the code's sentinel.
func ParseError(p []byte) (*RemoteError, error) {
	if len(p) < 3 {
		return nil, fmt.Errorf("error frame: %d bytes: %w", len(p), fabric.ErrProtocol)
	}
	n := int(binary.BigEndian.Uint16(p[1:]))
	if n > MaxErrorText || len(p) != 3+n {
		return nil, fmt.Errorf("error frame: message length %d of %d bytes: %w", n, len(p), fabric.ErrProtocol)
	}
	c := Code(p[0])
	if c == CodeOK || c >= codeLimit {
		return nil, fmt.Errorf("error frame: code %d: %w", c, fabric.ErrProtocol)
	}
	return &RemoteError{Code: c, Msg: string(p[3:])}, nil
}

// RemoteError is an error reported by the peer; errors.Is matches its code's sentinel.
type RemoteError struct {
	Code Code
	Msg  string
}

func (e *RemoteError) Error() string { return "sub-host: " + e.Msg }

// Unwrap returns the sentinel of the code.
func (e *RemoteError) Unwrap() error { return e.Code.Err() }
