package wire

import (
	"crypto/sha256"
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// NonceSize is the size of each side's authentication nonce.
const NonceSize = 32

// Nonce is one side's authentication nonce.
type Nonce = [NonceSize]byte

// Response is the client's answer to a Challenge.
type Response struct {
	VM     string
	Client Nonce
	MAC    [sha256.Size]byte
}

// AppendResponse encodes a Response payload.
func AppendResponse(b []byte, r Response) []byte {
	b = append(b, byte(len(r.VM)))
	b = append(b, r.VM...)
	b = append(b, r.Client[:]...)
	return append(b, r.MAC[:]...)
}

// ParseResponse decodes a Response payload.
func ParseResponse(p []byte) (Response, error) {
	var r Response
	if len(p) < 1 {
		return r, fmt.Errorf("auth response: empty: %w", fabric.ErrProtocol)
	}
	n := int(p[0])
	if len(p) != 1+n+NonceSize+sha256.Size {
		return r, fmt.Errorf("auth response: %d bytes for vm id of %d: %w", len(p), n, fabric.ErrProtocol)
	}
	r.VM = string(p[1 : 1+n])
	if store.ValidVMID(r.VM) != nil {
		return r, fmt.Errorf("auth response: vm id %q: %w", r.VM, fabric.ErrProtocol)
	}
	copy(r.Client[:], p[1+n:])
	copy(r.MAC[:], p[1+n+NonceSize:])
	return r, nil
}
