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
	qps     []QPInfo // server queue pairs handed out by the RDMA responder
	out     chan queued
	wmu     sync.Mutex // held while a reply is being written
	wfailed atomic.Bool

	dmu      sync.Mutex // guards draining and inFrame
	draining bool
	inFrame  bool
	payload []byte   // reusable request payload buffer
	slots   []uint64 // reusable decoded slot vector
	discard []byte   // sink for pages written to bad slots
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
		ss.log.Warn().Err(err).Msg("control: authentication failed; closing connection")
		return
	}
	_ = ss.conn.SetDeadline(time.Time{})
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
func (ss *session) send(t Type, id uint32, payload []byte) {
	b := make([]byte, 0, HeaderSize+len(payload))
	b = AppendHeader(b, Header{Type: t, ID: id, Len: uint32(len(payload))})
	ss.reply(net.Buffers{append(b, payload...)})
}

// fail answers request id with an error frame; the connection stays up.
func (ss *session) fail(id uint32, err error) {
	ss.send(TypeError, id, AppendError(nil, err))
}

// quiesce waits until every queued reply has been written.
func (ss *session) quiesce() {
	b := make(chan struct{})
	ss.out <- queued{barrier: b}
	<-b
}

// readPayload reads a whole request payload into the reusable buffer.
func (ss *session) readPayload(h Header, limit int) ([]byte, error) {
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
		if _, err := ss.br.Peek(HeaderSize); err != nil {
			return err
		}
		ss.frameStarted()
		h, err := ReadHeader(ss.br)
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

func (ss *session) handle(h Header) error {
	switch h.Type {
	case TypeRead:
		return ss.handleRead(h)
	case TypeWrite:
		return ss.handleWrite(h)
	case TypeFree:
		return ss.handleFree(h)
	case TypeOpen:
		p, err := ss.readPayload(h, 1+255+8)
		if err != nil {
			return err
		}
		o, err := ParseOpen(p)
		if err != nil {
			return err
		}
		ss.open(h.ID, o)
		return nil
	case TypeStats, TypeSync, TypeClose:
		if h.Len != 0 {
			return fmt.Errorf("%v request: payload %d, want 0: %w", h.Type, h.Len, fabric.ErrProtocol)
		}
		ss.control(h)
		if h.Type == TypeClose {
			return errClientClosed
		}
		return nil
	case TypeRDMAConnect, TypeRDMADisconnect:
		p, err := ss.readPayload(h, 1+MaxQPs*QPInfoSize)
		if err != nil {
			return err
		}
		qps, err := ParseQPInfos(p)
		if err != nil {
			return err
		}
		ss.rdma(h, qps)
		return nil
	case TypeBaselineStream, TypeBaselinePing:
		return ss.baseline(h)
	}
	return fmt.Errorf("unexpected %v frame from client: %w", h.Type, fabric.ErrProtocol)
}

func (ss *session) open(id uint32, o Open) {
	if o.VM != ss.vm {
		ss.log.Warn().Str("asked", o.VM).Msg("control: open of another vm refused")
		ss.fail(id, fmt.Errorf("open vm %q: authorised for %q only: %w", o.VM, ss.vm, fabric.ErrForbidden))
		return
	}
	var r Region
	var err error
	if o.Slots == 0 {
		r, err = ss.srv.cfg.Backend.Lookup(o.VM)
	} else {
		r, err = ss.srv.cfg.Backend.Region(o.VM, o.Slots)
	}
	if err != nil {
		ss.fail(id, fmt.Errorf("open vm %q: %w", o.VM, err))
		return
	}
	ss.region = r
	ss.send(TypeOpened, id, AppendUint64(nil, r.Slots()))
}

func (ss *session) control(h Header) {
	if h.Type == TypeClose {
		ss.send(TypeAck, h.ID, nil)
		return
	}
	if ss.region == nil {
		ss.fail(h.ID, fmt.Errorf("%v: %w", h.Type, ErrNotOpen))
		return
	}
	switch h.Type {
	case TypeStats:
		ss.send(TypeStatsReply, h.ID, AppendStats(nil, ss.region.Stats()))
	case TypeSync:
		if err := ss.region.Sync(); err != nil {
			ss.fail(h.ID, fmt.Errorf("sync vm %q: %w", ss.vm, err))
			return
		}
		ss.send(TypeAck, h.ID, nil)
	}
}

// readSlotVector reads and decodes a request's slot vector; for writes the
// payload also carries one page per slot, which stays unread.
func (ss *session) readSlotVector(h Header, pages bool) ([]uint64, error) {
	var cnt [4]byte
	if h.Len < 4 {
		return nil, fmt.Errorf("%v request: %d bytes: %w", h.Type, h.Len, fabric.ErrProtocol)
	}
	if _, err := io.ReadFull(ss.br, cnt[:]); err != nil {
		return nil, err
	}
	n, err := ParseSlotCount(cnt[:])
	if err != nil {
		return nil, err
	}
	want := SlotVectorSize(n)
	if pages {
		want += n * fabric.PageSize
	}
	if int(h.Len) != want {
		return nil, fmt.Errorf("%v request: %d bytes for %d slots: %w", h.Type, h.Len, n, fabric.ErrProtocol)
	}
	if cap(ss.payload) < SlotVectorSize(n) {
		ss.payload = make([]byte, SlotVectorSize(MaxSlotsPerRequest))
	}
	p := ss.payload[:SlotVectorSize(n)]
	copy(p, cnt[:])
	if _, err := io.ReadFull(ss.br, p[4:]); err != nil {
		return nil, err
	}
	ss.slots, err = ParseSlots(ss.slots[:0], p)
	return ss.slots, err
}

func (ss *session) handleRead(h Header) error {
	slots, err := ss.readSlotVector(h, false)
	if err != nil {
		return err
	}
	if ss.region == nil {
		ss.fail(h.ID, fmt.Errorf("read: %w", ErrNotOpen))
		return nil
	}
	codes := make([]Code, len(slots))
	bufs := make(net.Buffers, 1, 1+len(slots))
	for i, s := range slots {
		b, err := ss.region.Slot(s)
		if err != nil {
			codes[i] = CodeOf(err)
			continue
		}
		bufs = append(bufs, b)
	}
	pages := len(bufs) - 1
	head := make([]byte, 0, HeaderSize+StatusesSize(len(slots)))
	head = AppendHeader(head, Header{Type: TypeReadReply, ID: h.ID, Len: uint32(StatusesSize(len(slots)) + pages*fabric.PageSize)})
	bufs[0] = AppendStatuses(head, codes)
	ss.reply(bufs)
	return nil
}

func (ss *session) handleWrite(h Header) error {
	slots, err := ss.readSlotVector(h, true)
	if err != nil {
		return err
	}
	codes := make([]Code, len(slots))
	targets := make([][]byte, len(slots))
	for i, s := range slots {
		var b []byte
		if ss.region == nil {
			err = ErrNotOpen
		} else {
			b, err = ss.region.Slot(s)
		}
		if err != nil {
			codes[i] = CodeOf(err)
			if ss.discard == nil {
				ss.discard = make([]byte, fabric.PageSize)
			}
			b = ss.discard
		}
		targets[i] = b
	}
	if err := ReadVectors(ss.br, ss.conn, targets); err != nil {
		return fmt.Errorf("write request pages: %w", err)
	}
	ss.send(TypeStatuses, h.ID, AppendStatuses(nil, codes))
	return nil
}

func (ss *session) handleFree(h Header) error {
	slots, err := ss.readSlotVector(h, false)
	if err != nil {
		return err
	}
	if ss.region == nil {
		ss.fail(h.ID, fmt.Errorf("free: %w", ErrNotOpen))
		return nil
	}
	codes := make([]Code, len(slots))
	valid := make([]uint64, 0, len(slots))
	for i, s := range slots {
		if s >= ss.region.Slots() {
			codes[i] = CodeSlotRange
			continue
		}
		valid = append(valid, s)
	}
	if err := ss.region.Free(valid...); err != nil {
		c := CodeOf(err)
		for i := range codes {
			if codes[i] == CodeOK {
				codes[i] = c
			}
		}
		ss.log.Warn().Err(err).Msg("control: free failed")
	}
	ss.send(TypeStatuses, h.ID, AppendStatuses(nil, codes))
	return nil
}

func (ss *session) rdma(h Header, qps []QPInfo) {
	resp := ss.srv.cfg.RDMA
	switch {
	case resp == nil:
		ss.fail(h.ID, fmt.Errorf("%v: sub-host serves tcp only: %w", h.Type, fabric.ErrNoRDMA))
	case ss.region == nil:
		ss.fail(h.ID, fmt.Errorf("%v: %w", h.Type, ErrNotOpen))
	case h.Type == TypeRDMAConnect:
		if len(qps) == 0 {
			ss.fail(h.ID, fmt.Errorf("rdma-connect without queue pairs: %w", fabric.ErrProtocol))
			return
		}
		srv, err := resp.Connect(ss.vm, ss.region, qps)
		if err != nil {
			ss.fail(h.ID, fmt.Errorf("rdma-connect: %w", err))
			return
		}
		ss.qps = append(ss.qps, srv...)
		ss.send(TypeRDMAConnect, h.ID, AppendQPInfos(nil, srv))
	default:
		if err := resp.Disconnect(ss.vm, qps); err != nil {
			ss.fail(h.ID, fmt.Errorf("rdma-disconnect: %w", err))
			return
		}
		ss.qps = ss.qps[:0]
		ss.send(TypeAck, h.ID, nil)
	}
}

// releaseRDMA tears down queue pairs a client left behind.
func (ss *session) releaseRDMA() {
	if len(ss.qps) == 0 || ss.srv.cfg.RDMA == nil {
		return
	}
	if err := ss.srv.cfg.RDMA.Disconnect(ss.vm, ss.qps); err != nil {
		ss.log.Warn().Err(err).Msg("control: rdma teardown")
	}
}
