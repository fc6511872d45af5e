package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// authLabel binds every MAC to this protocol and version.
const authLabel = "vmemtrans-auth-v1"

func newNonce() (wire.Nonce, error) {
	var n wire.Nonce
	_, err := rand.Read(n[:])
	return n, err
}

// authMAC is HMAC-SHA256(key, label || vm || first || second). The client
// signs (server nonce, client nonce); the server signs the reverse order.
func authMAC(key []byte, vm string, first, second wire.Nonce) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(authLabel))
	m.Write([]byte(vm))
	m.Write(first[:])
	m.Write(second[:])
	return m.Sum(nil)
}

// serverAuth runs the server side of the handshake and returns the VM the
// client proved a key for. On failure the client is told why (ErrAuth or
// ErrProtocol) before the caller hangs up.
func serverAuth(rw io.ReadWriter, keys *Keyring) (string, error) {
	sn, err := newNonce()
	if err != nil {
		return "", fmt.Errorf("auth nonce: %w", err)
	}
	if err := wire.WriteFrame(rw, wire.TypeChallenge, 0, sn[:]); err != nil {
		return "", fmt.Errorf("auth challenge: %w", err)
	}
	h, p, err := wire.ReadFrame(rw, 1+255+wire.NonceSize+sha256.Size)
	if err != nil {
		return "", fmt.Errorf("auth response: %w", err)
	}
	if h.Type != wire.TypeResponse {
		err := fmt.Errorf("auth: got %v before authentication: %w", h.Type, fabric.ErrProtocol)
		_ = wire.WriteFrame(rw, wire.TypeError, h.ID, wire.AppendError(nil, err))
		return "", err
	}
	r, err := wire.ParseResponse(p)
	if err != nil {
		_ = wire.WriteFrame(rw, wire.TypeError, h.ID, wire.AppendError(nil, err))
		return "", err
	}
	key, ok := keys.Key(r.VM)
	if !ok || r.Client == sn || !hmac.Equal(r.MAC[:], authMAC(key, r.VM, sn, r.Client)) {
		err := fmt.Errorf("vm %q: bad proof or unknown vm: %w", r.VM, fabric.ErrAuth)
		_ = wire.WriteFrame(rw, wire.TypeError, h.ID, wire.AppendError(nil, fmt.Errorf("vm %q: %w", r.VM, fabric.ErrAuth)))
		return "", err
	}
	if err := wire.WriteFrame(rw, wire.TypeProof, h.ID, authMAC(key, r.VM, r.Client, sn)); err != nil {
		return "", fmt.Errorf("auth proof: %w", err)
	}
	return r.VM, nil
}

// clientAuth runs the client side of the handshake on a fresh connection:
// it proves knowledge of key for vm and checks the server's proof in turn.
// Errors wrap fabric.ErrAuth when either proof fails.
func clientAuth(rw io.ReadWriter, vm string, key []byte) error {
	if !ValidVMID(vm) {
		return fmt.Errorf("auth: vm id %q: %w", vm, fabric.ErrAuth)
	}
	h, p, err := wire.ReadFrame(rw, wire.MaxErrorText+3+wire.NonceSize)
	if err != nil {
		return fmt.Errorf("auth challenge: %w", err)
	}
	if h.Type != wire.TypeChallenge || len(p) != wire.NonceSize {
		return fmt.Errorf("auth challenge: got %v of %d bytes: %w", h.Type, len(p), fabric.ErrProtocol)
	}
	var sn wire.Nonce
	copy(sn[:], p)
	cn, err := newNonce()
	if err != nil {
		return fmt.Errorf("auth nonce: %w", err)
	}
	r := wire.Response{VM: vm, Client: cn}
	copy(r.MAC[:], authMAC(key, vm, sn, cn))
	if err := wire.WriteFrame(rw, wire.TypeResponse, 1, wire.AppendResponse(nil, r)); err != nil {
		return fmt.Errorf("auth response: %w", err)
	}
	h, p, err = wire.ReadFrame(rw, wire.MaxErrorText+3)
	if err != nil {
		return fmt.Errorf("auth proof: %w", err)
	}
	switch h.Type {
	case wire.TypeError:
		re, err := wire.ParseError(p)
		if err != nil {
			return err
		}
		return fmt.Errorf("auth: %w", re)
	case wire.TypeProof:
		if !hmac.Equal(p, authMAC(key, vm, cn, sn)) {
			return fmt.Errorf("auth: server proof does not match key of vm %q: %w", vm, fabric.ErrAuth)
		}
		return nil
	}
	return fmt.Errorf("auth proof: got %v: %w", h.Type, fabric.ErrProtocol)
}
