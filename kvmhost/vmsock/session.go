package vmsock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// session is one client connection: its reader executes get-info and
// get-fds in order and hands make-resident requests to goroutines (at
// most MaxInflight), whose results leave in any order, matched by id.
type session struct {
	srv     *Server
	c       *net.UnixConn
	br      *bufio.Reader
	log     zerolog.Logger
	ctx     context.Context // ends with the connection: cancels backend requests
	cancel  context.CancelFunc
	sem     chan struct{}
	wg      sync.WaitGroup
	wmu     sync.Mutex // one frame at a time on the wire
	wfailed bool       // guarded by wmu
	payload []byte
	version uint16 // negotiated in the handshake
}

func (ss *session) run() {
	defer ss.c.Close()
	defer ss.wg.Wait()
	defer ss.cancel()
	cred, err := peerCred(ss.c)
	if err != nil {
		ss.log.Warn().Err(err).Msg("vmsock: cannot identify the client; closing")
		return
	}
	ss.log = ss.log.With().Int32("peer_pid", cred.PID).Uint32("peer_uid", cred.UID).Logger()
	if err := authorizePeer(cred, ss.srv.uid); err != nil {
		ss.srv.stats.refused.Add(1)
		ss.log.Warn().Err(err).Msg("vmsock: refusing a client of another user")
		ss.fatal(err)
		return
	}
	ss.srv.stats.connections.Add(1)
	ss.br = bufio.NewReaderSize(ss.c, 4096)
	err = ss.handshake()
	if err == nil {
		ss.log.Debug().Msg("vmsock: client connected")
		err = ss.loop()
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		ss.log.Debug().Msg("vmsock: client left")
	case errors.Is(err, os.ErrDeadlineExceeded):
		ss.log.Info().Msg("vmsock: client too slow; closing")
		ss.fatal(fmt.Errorf("frame or handshake not completed in time: %w", context.DeadlineExceeded))
	default:
		if errors.Is(err, fabric.ErrProtocol) || errors.Is(err, ErrVersion) {
			ss.srv.stats.protocolErrors.Add(1)
			ss.fatal(err)
		}
		ss.log.Warn().Err(err).Msg("vmsock: closing connection")
	}
}

func (ss *session) handshake() error {
	_ = ss.c.SetReadDeadline(time.Now().Add(ss.srv.cfg.HandshakeTimeout))
	h, p, err := readFrame(ss.br, requestLimit, nil)
	if err != nil {
		return err
	}
	if h.Type != TypeHello {
		return fmt.Errorf("first frame is %v, want hello: %w", h.Type, fabric.ErrProtocol)
	}
	hello, err := ParseHello(p)
	if err != nil {
		return err
	}
	v, err := negotiate(hello)
	if err != nil {
		return err
	}
	ss.version = v
	ss.send(TypeWelcome, h.ID, AppendWelcome(nil, Welcome{Version: v, MaxGFNs: MaxGFNsPerRequest}))
	return nil
}

// loop executes requests until the client leaves or breaks the protocol.
func (ss *session) loop() error {
	for {
		var idle time.Time
		if ss.srv.cfg.IdleTimeout > 0 {
			idle = time.Now().Add(ss.srv.cfg.IdleTimeout)
		}
		_ = ss.c.SetReadDeadline(idle)
		if _, err := ss.br.Peek(1); err != nil {
			return err
		}
		_ = ss.c.SetReadDeadline(time.Now().Add(ss.srv.cfg.FrameTimeout))
		h, p, err := readFrame(ss.br, requestLimit, ss.payload)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%v frame cut short: %w", h.Type, io.ErrUnexpectedEOF)
			}
			return err
		}
		if cap(p) > cap(ss.payload) {
			ss.payload = p[:0]
		}
		if err := ss.handle(h, p); err != nil {
			return err
		}
	}
}

func (ss *session) handle(h Header, p []byte) error {
	b := ss.srv.cfg.Backend
	switch h.Type {
	case TypeGetInfo:
		ss.srv.stats.requests.Add(1)
		payload, err := AppendInfo(nil, b.Info())
		if err != nil {
			ss.fail(h.ID, fmt.Errorf("vm info: %w: %w", ErrRuntime, err))
			return nil
		}
		ss.send(TypeInfo, h.ID, payload)
	case TypeGetFDs:
		ss.srv.stats.requests.Add(1)
		ss.sendFDs(h.ID)
	case TypeGetStats:
		if ss.version < VersionStats {
			return fmt.Errorf("get-stats in protocol version %d: %w", ss.version, fabric.ErrProtocol)
		}
		ss.srv.stats.requests.Add(1)
		ss.sendStats(h.ID)
	case TypeMakeResident:
		gfns, err := ParseGFNs(nil, p)
		if err != nil {
			return err
		}
		select {
		case ss.sem <- struct{}{}:
		case <-ss.ctx.Done():
			return ss.ctx.Err()
		}
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			defer func() { <-ss.sem }()
			ss.makeResident(h.ID, gfns)
		}()
	case TypeHello:
		return fmt.Errorf("hello after the handshake: %w", fabric.ErrProtocol)
	default:
		return fmt.Errorf("%v frame from a client: %w", h.Type, fabric.ErrProtocol)
	}
	return nil
}

func (ss *session) sendFDs(id uint32) {
	b := ss.srv.cfg.Backend
	ram, err := b.RAMFile()
	if err != nil {
		ss.fail(id, fmt.Errorf("ram memfd: %w", err))
		return
	}
	defer ram.Close()
	lm, err := b.LocationMapFile()
	if err != nil {
		ss.fail(id, fmt.Errorf("location map: %w", err))
		return
	}
	defer lm.Close()
	ss.write(buildFrame(TypeFDs, id, []byte{numFDs}), []*os.File{ram, lm})
}

func (ss *session) sendStats(id uint32) {
	src, ok := ss.srv.cfg.Backend.(CounterSource)
	var m map[string]uint64
	if ok {
		m = src.Counters()
	}
	if m == nil {
		ss.fail(id, fmt.Errorf("this runtime keeps no counters: %w", ErrRuntime))
		return
	}
	cs := make([]Counter, 0, len(m))
	for name, v := range m {
		cs = append(cs, Counter{Name: name, Value: v})
	}
	slices.SortFunc(cs, func(a, b Counter) int { return strings.Compare(a.Name, b.Name) })
	ss.send(TypeStats, id, AppendStats(nil, cs))
}

func (ss *session) makeResident(id uint32, gfns []fabric.GFN) {
	ss.srv.stats.requests.Add(1)
	ss.srv.stats.residentRequests.Add(1)
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.RequestTimeout)
	defer cancel()
	errs := ss.srv.cfg.Backend.MakeResident(ctx, gfns)
	if len(errs) != len(gfns) {
		err := fmt.Errorf("backend answered %d of %d gfns: %w", len(errs), len(gfns), ErrRuntime)
		errs = make([]error, len(gfns))
		for i := range errs {
			errs[i] = err
		}
	}
	var failed uint64
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	ss.srv.stats.residentGFNs.Add(uint64(len(gfns)) - failed)
	ss.srv.stats.failedGFNs.Add(failed)
	ss.send(TypeResults, id, AppendResults(nil, errs))
}

func (ss *session) send(t Type, id uint32, payload []byte) {
	ss.write(buildFrame(t, id, payload), nil)
}

// fail answers request id with an error frame; the connection stays up.
func (ss *session) fail(id uint32, err error) {
	ss.log.Debug().Err(err).Uint32("id", id).Msg("vmsock: request failed")
	ss.send(TypeError, id, AppendError(nil, err))
}

// fatal tells the client why the connection ends (an error frame with id 0)
// and shuts the connection down for writing. Closing a unix socket with
// unread bytes resets the peer, which may then lose the frame, so what the
// client still sends is read and dropped for a moment before the caller
// closes it.
func (ss *session) fatal(err error) {
	ss.send(TypeError, 0, AppendError(nil, err))
	ss.wmu.Lock()
	ss.wfailed = true // nothing may follow the closing frame
	ss.wmu.Unlock()
	_ = ss.c.CloseWrite()
	_ = ss.c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, ss.c, lingerBytes)
}

// How long, and how much, a closing connection keeps reading.
const (
	lingerTime  = 250 * time.Millisecond
	lingerBytes = 4 << 20
)

// write sends one frame, with files attached if any. After a failed write
// the connection is closed (waking the reader) and later frames dropped.
func (ss *session) write(b []byte, files []*os.File) {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if ss.wfailed {
		return
	}
	_ = ss.c.SetWriteDeadline(time.Now().Add(ss.srv.cfg.WriteTimeout))
	var err error
	if len(files) > 0 {
		err = sendWithFiles(ss.c, b, files)
	} else {
		_, err = ss.c.Write(b)
	}
	if err != nil {
		ss.log.Debug().Err(err).Msg("vmsock: reply write failed")
		ss.wfailed = true
		ss.c.Close()
	}
}
