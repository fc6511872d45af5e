package agent

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"strings"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Sizes of the handshake's nonces and of every tag.
const (
	NonceSize = 32
	TagSize   = sha256.Size
)

// MinKeySize is the shortest pre-shared key accepted, in bytes.
const MinKeySize = 16

// Nonce is one side's handshake nonce.
type Nonce = [NonceSize]byte

// Tag is an HMAC-SHA256 value: a proof or a frame tag.
type Tag = [TagSize]byte

// Labels keep the three uses of the key apart: a server proof is no
// client proof, and neither is a session key.
const (
	labelServer  = "vmemtrans-agent server"
	labelClient  = "vmemtrans-agent client"
	labelSession = "vmemtrans-agent session"
)

// Directions a frame tag is bound to, so that a frame cannot be reflected.
const (
	dirToServer = 'C'
	dirToClient = 'S'
)

func newNonce() (Nonce, error) {
	var n Nonce
	_, err := rand.Read(n[:])
	return n, err
}

func mac(key []byte, label string, version uint16, cn, sn *Nonce) Tag {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	if version != 0 {
		var v [2]byte
		binary.BigEndian.PutUint16(v[:], version)
		h.Write(v[:])
	}
	h.Write(cn[:])
	h.Write(sn[:])
	var t Tag
	h.Sum(t[:0])
	return t
}

func serverProof(key []byte, v uint16, cn, sn *Nonce) Tag { return mac(key, labelServer, v, cn, sn) }
func clientProof(key []byte, v uint16, cn, sn *Nonce) Tag { return mac(key, labelClient, v, cn, sn) }

// tagger tags one direction's frames and checks the other's, with a
// connection's session key and per-direction sequence numbers. The zero
// tagger (before the handshake ends) neither tags nor checks.
type tagger struct {
	send, recv       hash.Hash
	sendDir, recvDir byte
	sendSeq, recvSeq uint64
}

func newTagger(key []byte, cn, sn *Nonce, server bool) *tagger {
	sk := mac(key, labelSession, 0, cn, sn)
	t := &tagger{send: hmac.New(sha256.New, sk[:]), recv: hmac.New(sha256.New, sk[:])}
	t.sendDir, t.recvDir = dirToServer, dirToClient
	if server {
		t.sendDir, t.recvDir = dirToClient, dirToServer
	}
	return t
}

func (t *tagger) keyed() bool { return t != nil && t.send != nil }

func frameTag(h hash.Hash, dir byte, seq uint64, header, payload []byte) Tag {
	h.Reset()
	var pre [9]byte
	pre[0] = dir
	binary.BigEndian.PutUint64(pre[1:], seq)
	h.Write(pre[:])
	h.Write(header)
	h.Write(payload)
	var tag Tag
	h.Sum(tag[:0])
	return tag
}

// seal appends the tag of the next outgoing frame to b.
func (t *tagger) seal(b, header, payload []byte) []byte {
	tag := frameTag(t.send, t.sendDir, t.sendSeq, header, payload)
	t.sendSeq++
	return append(b, tag[:]...)
}

// open checks the tag of the next incoming frame.
func (t *tagger) open(header, payload, tag []byte) error {
	want := frameTag(t.recv, t.recvDir, t.recvSeq, header, payload)
	if !hmac.Equal(want[:], tag) {
		return fmt.Errorf("frame %d: bad tag (forged, replayed or reordered): %w", t.recvSeq, fabric.ErrAuth)
	}
	t.recvSeq++
	return nil
}

// CheckKey refuses a key too short to authenticate anything.
func CheckKey(key []byte) error {
	if len(key) < MinKeySize {
		return fmt.Errorf("key of %d bytes, want at least %d: %w", len(key), MinKeySize, ErrKey)
	}
	return nil
}

// LoadKey reads a pre-shared key file: the key in hex on one line (blank
// lines and "#" comments aside), or, if the file is not hex, its bytes
// without a trailing newline. The file must not be readable by group or
// others.
func LoadKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("agent key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("agent key file %s: mode %#o lets others read it (chmod 600 it): %w", path, st.Mode().Perm(), ErrKey)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent key file: %w", err)
	}
	key := parseKey(b)
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("agent key file %s: %w", path, err)
	}
	return key, nil
}

func parseKey(b []byte) []byte {
	var text []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			text = append(text, l)
		}
	}
	if len(text) == 1 {
		if k, err := hex.DecodeString(text[0]); err == nil {
			return k
		}
	}
	return bytes.TrimRight(b, "\r\n")
}
