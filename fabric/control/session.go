package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmemtrans/vmemtrans/internal/wire"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// replyQueue is how many replies a connection's reader may run ahead of its writer.
const replyQueue = 64

// queued is one unit of work for a connection's writer: a vectored frame,
// or a barrier closed once everything queued before it is written.
type queued struct {
	bufs    net.Buffers
	barrier chan struct{}
}

// session is one client connection: a reader goroutine that decodes and
// executes requests in order, and a writer goroutine that sends replies.
type session struct {
	srv     *Server
	conn    net.Conn
	br      *bufio.Reader
	log     zerolog.Logger
	vm      string
	region  Region
	served  []RDMAParams // server queue pairs handed out by the RDMA responder
	out     chan queued
	wmu     sync.Mutex // held while a reply is being written
	wfailed atomic.Bool

	dmu      sync.Mutex // guards draining and inFrame
	draining bool
	inFrame  bool
	payload  []byte   // reusable request payload buffer
	slots    []uint64 // reusable decoded slot vector
	discard  []byte   // sink for pages written to bad slots
	stage    []byte   // written pages are received here before reaching slots
}

func newSession(srv *Server, c net.Conn) *session {
	return &session{
		srv:  srv,
		conn: c,
		br:   bufio.NewReaderSize(c, fabric.PageSize),
		log:  srv.cfg.Log.With().Str("peer", c.RemoteAddr().String()).Logger(),
		out:  make(chan queued, replyQueue),
	}
}

// Close hangs up at once.
func (ss *session) Close() error { return ss.conn.Close() }

// drain asks the session to stop once the request it is reading, if any,
// is done: the wait for the next header is cut short, a frame never is.
func (ss *session) drain() {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	ss.draining = true
	if !ss.inFrame {
		_ = ss.conn.SetReadDeadline(time.Now())
	}
}

// frameStarted marks a frame as being read; a draining session still
// serves it, with the deadline lifted.
func (ss *session) frameStarted() {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	ss.inFrame = true
	if ss.draining {
		_ = ss.conn.SetReadDeadline(time.Time{})
	}
}

// frameDone reports whether the session should stop now.
func (ss *session) frameDone() bool {
	ss.dmu.Lock()
	defer ss.dmu.Unlock()
	ss.inFrame = false
	return ss.draining
}

func (ss *session) run() {
	defer ss.conn.Close()
	_ = ss.conn.SetDeadline(time.Now().Add(ss.srv.cfg.AuthTimeout))
	vm, err := serverAuth(struct {
		io.Reader
		io.Writer
	}{ss.br, ss.conn}, ss.srv.cfg.Keys)
	if err != nil {
		ss.srv.counters.authFailures.Add(1)
		ss.log.Warn().Err(err).Msg("control: authentication failed; closing connection")
		if kerr := ss.srv.cfg.Keys.Err(); kerr != nil {
			ss.log.Error().Err(kerr).Msg("control: the key file grants no key until fixed")
		}
		return
	}
	_ = ss.conn.SetDeadline(time.Time{})
	ss.srv.authenticated(ss)
	ss.vm = vm
	ss.log = ss.log.With().Str("vm", vm).Logger()
	ss.log.Debug().Msg("control: client authenticated")

	writerDone := make(chan struct{})
	go ss.writeLoop(writerDone)
	err = ss.readLoop()
	close(ss.out)
	<-writerDone
	ss.releaseRDMA()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, net.ErrClosed):
		ss.log.Debug().AnErr("cause", err).Msg("control: connection done")
	default:
		ss.log.Warn().Err(err).Msg("control: closing connection")
	}
}

func (ss *session) writeLoop(done chan<- struct{}) {
	defer close(done)
	for r := range ss.out {
		if r.barrier != nil {
			close(r.barrier)
			continue
		}
		ss.wmu.Lock()
		ss.write(r.bufs)
		ss.wmu.Unlock()
	}
}

// write sends one reply frame with a single vectored write; wmu is held.
// After a failed write the connection is closed and later replies dropped.
func (ss *session) write(bufs net.Buffers) {
	if ss.wfailed.Load() {
		return
	}
	_ = ss.conn.SetWriteDeadline(time.Now().Add(ss.srv.cfg.WriteTimeout))
	if _, err := bufs.WriteTo(ss.conn); err != nil {
		ss.log.Debug().Err(err).Msg("control: reply write failed")
		ss.wfailed.Store(true)
		ss.conn.Close() // wakes the reader
	}
}

// reply hands a frame to the connection. Replies may leave in any order
// (clients match them by request id), so when nothing is queued and no
// write is in progress the reader writes it itself, sparing a goroutine
// hand-off on the latency path; otherwise the writer sends it.
func (ss *session) reply(bufs net.Buffers) {
	if len(ss.out) == 0 && ss.wmu.TryLock() {
		ss.write(bufs)
		ss.wmu.Unlock()
		return
	}
	ss.out <- queued{bufs: bufs}
}

// send replies with one frame.
func (ss *session) send(t wire.Type, id uint32, payload []byte) {
	b := make([]byte, 0, wire.HeaderSize+len(payload))
	b = wire.AppendHeader(b, wire.Header{Type: t, ID: id, Len: uint32(len(payload))})
	ss.reply(net.Buffers{append(b, payload...)})
}

// fail answers request id with an error frame; the connection stays up.
func (ss *session) fail(id uint32, err error) {
	ss.send(wire.TypeError, id, wire.AppendError(nil, err))
}

// quiesce waits until every queued reply has been written.
func (ss *session) quiesce() {
	b := make(chan struct{})
	ss.out <- queued{barrier: b}
	<-b
}

// readPayload reads a whole request payload into the reusable buffer.
func (ss *session) readPayload(h wire.Header, limit int) ([]byte, error) {
	if int(h.Len) > limit {
		return nil, fmt.Errorf("%v request: payload %d over %d: %w", h.Type, h.Len, limit, fabric.ErrProtocol)
	}
	if cap(ss.payload) < int(h.Len) {
		ss.payload = make([]byte, h.Len)
	}
	p := ss.payload[:h.Len]
	_, err := io.ReadFull(ss.br, p)
	return p, err
}

// readLoop executes requests until the client leaves (nil or io.EOF) or
// breaks the protocol (an error wrapping fabric.ErrProtocol).
func (ss *session) readLoop() error {
	for {
		if _, err := ss.br.Peek(wire.HeaderSize); err != nil {
			return err
		}
		ss.frameStarted()
		h, err := wire.ReadHeader(ss.br)
		if err != nil {
			return err
		}
		if err := ss.handle(h); err != nil {
			if errors.Is(err, errClientClosed) {
				return nil
			}
			return err
		}
		if ss.frameDone() {
			return nil
		}
	}
}

var errClientClosed = errors.New("client closed the session")
