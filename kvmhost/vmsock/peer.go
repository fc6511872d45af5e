package vmsock

import (
	"fmt"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// PeerCred is the identity the kernel vouches for on a unix socket (SO_PEERCRED).
type PeerCred struct {
	PID      int32
	UID, GID uint32
}

// authorizePeer decides whether a server running as uid self serves peer:
// the runtime hands out guest RAM and sub-host keys, so only its own user
// and root may have them, whatever the socket file's mode says.
func authorizePeer(peer PeerCred, self uint32) error {
	if peer.UID == self || peer.UID == 0 {
		return nil
	}
	return fmt.Errorf("peer pid %d runs as uid %d; this runtime serves only uid %d and root (run the IDS as uid %d): %w",
		peer.PID, peer.UID, self, self, fabric.ErrForbidden)
}
