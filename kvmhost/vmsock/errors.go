package vmsock

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Errors of the socket protocol that have no fabric sentinel.
var (
	// ErrVersion reports a client and server with no protocol version in common.
	ErrVersion = errors.New("no common protocol version")
	// ErrRuntime reports a runtime-side failure without a more precise code.
	ErrRuntime = errors.New("runtime error")
	// ErrUnsupported reports a platform without unix sockets and SCM_RIGHTS.
	ErrUnsupported = fmt.Errorf("runtime socket needs linux: %w", errors.ErrUnsupported)
)

// Code is the wire form of an error; zero means success.
type Code uint8

// Error codes. Each maps to one sentinel, so errors.Is works across the socket.
const (
	CodeOK Code = iota
	CodeProtocol
	CodeVersion
	CodeForbidden
	CodeGFNRange
	CodePeer
	CodeUnstable
	CodeClosed
	CodeTimeout
	CodeCanceled
	CodeBadLocation
	CodeRuntime
	codeLimit
)

var codeErrs = [...]error{
	CodeProtocol:    fabric.ErrProtocol,
	CodeVersion:     ErrVersion,
	CodeForbidden:   fabric.ErrForbidden,
	CodeGFNRange:    fabric.ErrGFNRange,
	CodePeer:        fabric.ErrPeer,
	CodeUnstable:    fabric.ErrUnstable,
	CodeClosed:      fabric.ErrClosed,
	CodeTimeout:     context.DeadlineExceeded,
	CodeCanceled:    context.Canceled,
	CodeBadLocation: fabric.ErrBadLocation,
	CodeRuntime:     ErrRuntime,
}

// CodeOf maps an error to the code that carries it on the wire.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for c := CodeProtocol; c < codeLimit; c++ {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	return CodeRuntime
}

// Err maps a code back to its sentinel: nil for CodeOK, ErrRuntime for codes
// this version does not know.
func (c Code) Err() error {
	if c == CodeOK {
		return nil
	}
	if c < codeLimit {
		return codeErrs[c]
	}
	return ErrRuntime
}

// RemoteError is an error the runtime reported; errors.Is matches its code's sentinel.
type RemoteError struct {
	Code Code
	Msg  string
}

func (e *RemoteError) Error() string { return "runtime: " + e.Msg }

// Unwrap returns the sentinel of the code.
func (e *RemoteError) Unwrap() error { return e.Code.Err() }
