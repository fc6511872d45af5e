package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// NonceSize is the size of each side's authentication nonce.
const NonceSize = 32

// authLabel binds every MAC to this protocol and version.
const authLabel = "vmemtrans-auth-v1"

type nonce = [NonceSize]byte

func newNonce() (nonce, error) {
	var n nonce
	_, err := rand.Read(n[:])
	return n, err
}

// authMAC is HMAC-SHA256(key, label || vm || first || second). The client
// signs (server nonce, client nonce); the server signs the reverse order.
func authMAC(key []byte, vm string, first, second nonce) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(authLabel))
	m.Write([]byte(vm))
	m.Write(first[:])
	m.Write(second[:])
	return m.Sum(nil)
}

// Response is the client's answer to a Challenge.
type Response struct {
	VM     string
	Client nonce
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
	if !ValidVMID(r.VM) {
		return r, fmt.Errorf("auth response: vm id %q: %w", r.VM, fabric.ErrProtocol)
	}
	copy(r.Client[:], p[1+n:])
	copy(r.MAC[:], p[1+n+NonceSize:])
	return r, nil
}

// serverAuth runs the server side of the handshake and returns the VM the
// client proved a key for. On failure the client is told why (ErrAuth or
// ErrProtocol) before the caller hangs up.
func serverAuth(rw io.ReadWriter, keys *Keyring) (string, error) {
	sn, err := newNonce()
	if err != nil {
		return "", fmt.Errorf("auth nonce: %w", err)
	}
	if err := WriteFrame(rw, TypeChallenge, 0, sn[:]); err != nil {
		return "", fmt.Errorf("auth challenge: %w", err)
	}
	h, p, err := ReadFrame(rw, 1+255+NonceSize+sha256.Size)
	if err != nil {
		return "", fmt.Errorf("auth response: %w", err)
	}
	if h.Type != TypeResponse {
		err := fmt.Errorf("auth: got %v before authentication: %w", h.Type, fabric.ErrProtocol)
		_ = WriteFrame(rw, TypeError, h.ID, AppendError(nil, err))
		return "", err
	}
	r, err := ParseResponse(p)
	if err != nil {
		_ = WriteFrame(rw, TypeError, h.ID, AppendError(nil, err))
		return "", err
	}
	key, ok := keys.Key(r.VM)
	if !ok || r.Client == sn || !hmac.Equal(r.MAC[:], authMAC(key, r.VM, sn, r.Client)) {
		err := fmt.Errorf("vm %q: bad proof or unknown vm: %w", r.VM, fabric.ErrAuth)
		_ = WriteFrame(rw, TypeError, h.ID, AppendError(nil, fmt.Errorf("vm %q: %w", r.VM, fabric.ErrAuth)))
		return "", err
	}
	if err := WriteFrame(rw, TypeProof, h.ID, authMAC(key, r.VM, r.Client, sn)); err != nil {
		return "", fmt.Errorf("auth proof: %w", err)
	}
	return r.VM, nil
}

// ClientAuth runs the client side of the handshake on a fresh connection:
// it proves knowledge of key for vm and checks the server's proof in turn.
// Errors wrap fabric.ErrAuth when either proof fails.
func ClientAuth(rw io.ReadWriter, vm string, key []byte) error {
	if !ValidVMID(vm) {
		return fmt.Errorf("auth: vm id %q: %w", vm, fabric.ErrAuth)
	}
	h, p, err := ReadFrame(rw, maxErrorText+3+NonceSize)
	if err != nil {
		return fmt.Errorf("auth challenge: %w", err)
	}
	if h.Type != TypeChallenge || len(p) != NonceSize {
		return fmt.Errorf("auth challenge: got %v of %d bytes: %w", h.Type, len(p), fabric.ErrProtocol)
	}
	var sn nonce
	copy(sn[:], p)
	cn, err := newNonce()
	if err != nil {
		return fmt.Errorf("auth nonce: %w", err)
	}
	r := Response{VM: vm, Client: cn}
	copy(r.MAC[:], authMAC(key, vm, sn, cn))
	if err := WriteFrame(rw, TypeResponse, 1, AppendResponse(nil, r)); err != nil {
		return fmt.Errorf("auth response: %w", err)
	}
	h, p, err = ReadFrame(rw, maxErrorText+3)
	if err != nil {
		return fmt.Errorf("auth proof: %w", err)
	}
	switch h.Type {
	case TypeError:
		re, err := ParseError(p)
		if err != nil {
			return err
		}
		return fmt.Errorf("auth: %w", re)
	case TypeProof:
		if !hmac.Equal(p, authMAC(key, vm, cn, sn)) {
			return fmt.Errorf("auth: server proof does not match key of vm %q: %w", vm, fabric.ErrAuth)
		}
		return nil
	}
	return fmt.Errorf("auth proof: got %v: %w", h.Type, fabric.ErrProtocol)
}
