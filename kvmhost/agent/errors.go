package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Errors of the agent protocol; fabric.ErrProtocol (malformed frames) and
// fabric.ErrAuth (wrong key, bad tag) come from fabric.
var (
	// ErrVersion reports a client and agent with no protocol version in common.
	ErrVersion = errors.New("no common agent protocol version")
	// ErrAgentDown reports a request not sent because the agent was found
	// silent, slow or lying (the client's circuit breaker is open).
	ErrAgentDown = errors.New("agent not trusted now: silent, slow or lying")
	// ErrNotRAM reports a GFN the guest kernel does not map as RAM.
	ErrNotRAM = errors.New("gfn not in the guest's ram")
	// ErrTouch reports a page the guest could not read.
	ErrTouch = errors.New("guest could not read the page")
	// ErrUnavailable reports an agent that cannot touch pages at all (no
	// /proc/kcore, no permission).
	ErrUnavailable = errors.New("agent cannot touch pages")
	// ErrInternal reports an agent-side failure without a more precise code.
	ErrInternal = errors.New("agent error")
	// ErrKey reports an unusable pre-shared key.
	ErrKey = errors.New("bad agent key")
	// ErrAddress reports an agent address that is not unix:PATH or vsock:CID:PORT.
	ErrAddress = errors.New("bad agent address")
	// ErrUnsupported reports a transport this platform lacks.
	ErrUnsupported = fmt.Errorf("agent transport needs linux: %w", errors.ErrUnsupported)
)

// Code is the wire form of a connection or request error (error frames).
type Code uint8

// Error frame codes.
const (
	CodeProtocol Code = iota + 1
	CodeVersion
	CodeAuth
	CodeTimeout
	CodeInternal
	codeLimit
)

var codeErrs = [...]error{
	CodeProtocol: fabric.ErrProtocol,
	CodeVersion:  ErrVersion,
	CodeAuth:     fabric.ErrAuth,
	CodeTimeout:  context.DeadlineExceeded,
	CodeInternal: ErrInternal,
}

// CodeOf maps an error to the code that carries it in an error frame.
func CodeOf(err error) Code {
	for c := CodeProtocol; c < codeLimit; c++ {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	return CodeInternal
}

// Err is the sentinel of c; codes this version does not know map to ErrInternal.
func (c Code) Err() error {
	if c > 0 && c < codeLimit {
		return codeErrs[c]
	}
	return ErrInternal
}

// RemoteError is an error the agent sent; errors.Is matches its code's sentinel.
type RemoteError struct {
	Code Code
	Msg  string
}

func (e *RemoteError) Error() string { return "agent: " + e.Msg }

// Unwrap returns the sentinel of the code.
func (e *RemoteError) Unwrap() error { return e.Code.Err() }

// Reason is the per-GFN outcome of a touch request.
type Reason uint8

// Per-GFN reasons.
const (
	ReasonDone        Reason = iota // the guest read the page
	ReasonNotRAM                    // not in any RAM segment of /proc/kcore
	ReasonReadFailed                // the read of the page failed
	ReasonTimeout                   // the request ran out of time before this page
	ReasonUnavailable               // the agent cannot touch pages at all
	reasonLimit
)

var reasonErrs = [...]error{
	ReasonNotRAM:      ErrNotRAM,
	ReasonReadFailed:  ErrTouch,
	ReasonTimeout:     context.DeadlineExceeded,
	ReasonUnavailable: ErrUnavailable,
}

var reasonNames = [...]string{
	ReasonDone: "done", ReasonNotRAM: "not-ram", ReasonReadFailed: "read-failed",
	ReasonTimeout: "timeout", ReasonUnavailable: "unavailable",
}

func (r Reason) String() string {
	if r < reasonLimit {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Err is the sentinel of r (nil for done); reasons this version does not
// know map to ErrInternal.
func (r Reason) Err() error {
	switch {
	case r == ReasonDone:
		return nil
	case r < reasonLimit:
		return reasonErrs[r]
	}
	return ErrInternal
}

// ReasonOf maps a touch error to its wire reason.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonDone
	}
	for r := ReasonNotRAM; r < reasonLimit; r++ {
		if errors.Is(err, reasonErrs[r]) {
			return r
		}
	}
	if errors.Is(err, context.Canceled) {
		return ReasonTimeout
	}
	return ReasonReadFailed
}
