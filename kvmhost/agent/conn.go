package agent

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// clientConn is one authenticated connection to an agent: requests are
// pipelined and matched to replies by id.
type clientConn struct {
	c       net.Conn
	maxGFNs int
	version uint16

	wmu  sync.Mutex // one frame at a time, in sequence-number order
	tags *tagger
	out  []byte

	mu      sync.Mutex
	pending map[uint32]chan connReply
	nextID  uint32
	err     error // why the connection ended; set once
	done    chan struct{}
}

type connReply struct {
	h   Header
	p   []byte
	err error
}

// handshake authenticates c with key within ctx and starts its reader.
func handshake(ctx context.Context, c net.Conn, key []byte) (*clientConn, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	cn, err := newNonce()
	if err != nil {
		return nil, fmt.Errorf("agent nonce: %w", err)
	}
	br := bufio.NewReaderSize(c, 4096)
	// Ids from the nonce: on a shared stream, replies to an earlier
	// session's frames carry other ids and are skipped.
	helloID := binary.BigEndian.Uint32(cn[:]) | 1
	hello := AppendHello(nil, Hello{Min: VersionMin, Max: VersionMax, Nonce: cn})
	if _, err := c.Write(appendFrame(nil, nil, TypeHello, helloID, hello)); err != nil {
		return nil, fmt.Errorf("send hello: %w: %w", fabric.ErrPeer, err)
	}
	p, err := handshakeReply(br, TypeChallenge, helloID)
	if err != nil {
		return nil, err
	}
	ch, err := ParseChallenge(p)
	if err != nil {
		return nil, err
	}
	if ch.Version < VersionMin || ch.Version > VersionMax {
		return nil, fmt.Errorf("agent chose version %d, this client speaks %d..%d: %w", ch.Version, VersionMin, VersionMax, ErrVersion)
	}
	if want := serverProof(key, ch.Version, &cn, &ch.Nonce); !hmac.Equal(want[:], ch.Proof[:]) {
		return nil, fmt.Errorf("the agent's proof does not match our key (wrong key, or not the agent): %w", fabric.ErrAuth)
	}
	proof := clientProof(key, ch.Version, &cn, &ch.Nonce)
	if _, err := c.Write(appendFrame(nil, nil, TypeAuth, helloID+1, proof[:])); err != nil {
		return nil, fmt.Errorf("send auth: %w: %w", fabric.ErrPeer, err)
	}
	if _, err := handshakeReply(br, TypeWelcome, helloID+1); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	t := newTagger(key, &cn, &ch.Nonce, false)
	cc := &clientConn{c: c, maxGFNs: int(ch.MaxGFNs), version: ch.Version, tags: t,
		pending: map[uint32]chan connReply{}, nextID: 2, done: make(chan struct{})}
	go cc.readLoop(br)
	return cc, nil
}

// maxStale bounds the frames of earlier sessions a handshake skips.
const maxStale = 16

// handshakeReply reads the untagged reply to the handshake frame id: want,
// or an error frame saying why the agent refused (with that id, or 0 when
// the agent could not tell which frame it refused). Frames with other ids
// are left over from an earlier session on the same stream, and skipped.
func handshakeReply(br *bufio.Reader, want Type, id uint32) ([]byte, error) {
	for range maxStale {
		h, p, err := readFrame(br, replyLimit, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("agent handshake, reading %v: %w: %w", want, fabric.ErrPeer, err)
		}
		switch {
		case h.Type == want && h.ID == id:
			return p, nil
		case h.Type == TypeError && h.ID == id:
			re, err := ParseError(p)
			if err != nil {
				return nil, err
			}
			return nil, re
		case h.ID == id:
			return nil, fmt.Errorf("agent handshake: %v frame, want %v: %w", h.Type, want, fabric.ErrProtocol)
		}
	}
	return nil, fmt.Errorf("agent handshake: %d frames of other sessions before the %v: %w", maxStale, want, fabric.ErrProtocol)
}

// touch sends one touch request and waits for its reasons.
func (cc *clientConn) touch(ctx context.Context, gfns []fabric.GFN) ([]Reason, error) {
	ch := make(chan connReply, 1)
	cc.mu.Lock()
	if cc.err != nil {
		err := cc.err
		cc.mu.Unlock()
		return nil, err
	}
	cc.nextID++
	if cc.nextID == 0 {
		cc.nextID = 1
	}
	id := cc.nextID
	cc.pending[id] = ch
	cc.mu.Unlock()

	cc.wmu.Lock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(DefaultTimeout)
	}
	_ = cc.c.SetWriteDeadline(dl)
	cc.out = appendFrame(cc.out[:0], cc.tags, TypeTouch, id, AppendGFNs(nil, gfns))
	_, err := cc.c.Write(cc.out)
	cc.wmu.Unlock()
	if err != nil {
		cc.fail(fmt.Errorf("send touch: %w: %w", fabric.ErrPeer, err)) // a half-written frame ends the stream
	} else {
		select {
		case r := <-ch:
			return checkResults(r, len(gfns))
		case <-ctx.Done():
			err = ctx.Err()
		case <-cc.done:
		}
	}
	cc.mu.Lock()
	delete(cc.pending, id)
	if err == nil {
		err = cc.err
	}
	cc.mu.Unlock()
	return nil, err
}

func checkResults(r connReply, n int) ([]Reason, error) {
	switch {
	case r.err != nil:
		return nil, r.err
	case r.h.Type == TypeError:
		re, err := ParseError(r.p)
		if err != nil {
			return nil, err
		}
		return nil, re
	case r.h.Type != TypeResults:
		return nil, fmt.Errorf("%v frame answers a touch: %w", r.h.Type, fabric.ErrProtocol)
	}
	rs, err := ParseResults(r.p)
	if err == nil && len(rs) != n {
		err = fmt.Errorf("agent results: %d for %d gfns: %w", len(rs), n, fabric.ErrProtocol)
	}
	return rs, err
}

// fail ends the connection with err (the first reason wins).
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
	}
	cc.mu.Unlock()
	cc.c.Close()
}

func (cc *clientConn) close() {
	cc.fail(fmt.Errorf("agent client closed: %w", fabric.ErrClosed))
	<-cc.done
}

func (cc *clientConn) alive() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err == nil
}

// readLoop hands each reply to its request until the connection ends,
// then fails every pending request with the reason.
func (cc *clientConn) readLoop(br *bufio.Reader) {
	err := cc.readReplies(br)
	var re *RemoteError
	if !errors.As(err, &re) {
		err = fmt.Errorf("agent connection lost: %w: %w", fabric.ErrPeer, err)
	}
	cc.fail(err)
	cc.mu.Lock()
	for id, ch := range cc.pending {
		ch <- connReply{err: cc.err}
		delete(cc.pending, id)
	}
	cc.mu.Unlock()
	close(cc.done)
}

func (cc *clientConn) readReplies(br *bufio.Reader) error {
	for {
		h, p, err := readFrame(br, replyLimit, cc.tags, nil)
		if err != nil {
			return err
		}
		if h.Type.request() || h.Type == TypeChallenge || h.Type == TypeWelcome {
			return fmt.Errorf("%v frame from the agent after the handshake: %w", h.Type, fabric.ErrProtocol)
		}
		if h.ID == 0 {
			if h.Type != TypeError {
				return fmt.Errorf("%v frame with id 0: %w", h.Type, fabric.ErrProtocol)
			}
			re, err := ParseError(p)
			if err != nil {
				return err
			}
			return re
		}
		cc.mu.Lock()
		ch := cc.pending[h.ID]
		delete(cc.pending, h.ID)
		cc.mu.Unlock()
		if ch != nil { // else its caller gave up
			ch <- connReply{h: h, p: p}
		}
	}
}
