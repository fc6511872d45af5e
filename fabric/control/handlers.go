package control

import (
	"fmt"
	"io"
	"net"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// handle executes one request whose header has been read. An error return
// means the stream can no longer be trusted and the connection must close;
// failures of the request alone are answered with an error frame.
func (ss *session) handle(h wire.Header) error {
	switch h.Type {
	case wire.TypeRead:
		return ss.handleRead(h)
	case wire.TypeWrite:
		return ss.handleWrite(h)
	case wire.TypeFree:
		return ss.handleFree(h)
	case wire.TypeOpen:
		p, err := ss.readPayload(h, 1+255+8)
		if err != nil {
			return err
		}
		o, err := wire.ParseOpen(p)
		if err != nil {
			return err
		}
		ss.open(h.ID, o)
		return nil
	case wire.TypeStats, wire.TypeSync, wire.TypeClose:
		if h.Len != 0 {
			return fmt.Errorf("%v request: payload %d, want 0: %w", h.Type, h.Len, fabric.ErrProtocol)
		}
		ss.control(h)
		if h.Type == wire.TypeClose {
			return errClientClosed
		}
		return nil
	case wire.TypeRDMAConnect, wire.TypeRDMADisconnect:
		p, err := ss.readPayload(h, wire.MaxRDMAParamsSize)
		if err != nil {
			return err
		}
		qps, err := wire.ParseRDMAParams(p)
		if err != nil {
			return err
		}
		ss.rdma(h, qps)
		return nil
	case wire.TypeBaselineStream, wire.TypeBaselinePing:
		return ss.baseline(h)
	}
	return fmt.Errorf("unexpected %v frame from client: %w", h.Type, fabric.ErrProtocol)
}

func (ss *session) open(id uint32, o wire.Open) {
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
	ss.send(wire.TypeOpened, id, wire.AppendUint64(nil, r.Slots()))
}

func (ss *session) control(h wire.Header) {
	if h.Type == wire.TypeClose {
		ss.send(wire.TypeAck, h.ID, nil)
		return
	}
	if ss.region == nil {
		ss.fail(h.ID, fmt.Errorf("%v: %w", h.Type, wire.ErrNotOpen))
		return
	}
	switch h.Type {
	case wire.TypeStats:
		ss.send(wire.TypeStatsReply, h.ID, wire.AppendStats(nil, ss.region.Stats()))
	case wire.TypeSync:
		if err := ss.region.Sync(); err != nil {
			ss.fail(h.ID, fmt.Errorf("sync vm %q: %w", ss.vm, err))
			return
		}
		ss.send(wire.TypeAck, h.ID, nil)
	}
}

// readSlotVector reads and decodes a request's slot vector; for writes the
// payload also carries one page per slot, which stays unread.
func (ss *session) readSlotVector(h wire.Header, pages bool) ([]uint64, error) {
	var cnt [4]byte
	if h.Len < 4 {
		return nil, fmt.Errorf("%v request: %d bytes: %w", h.Type, h.Len, fabric.ErrProtocol)
	}
	if _, err := io.ReadFull(ss.br, cnt[:]); err != nil {
		return nil, err
	}
	n, err := wire.ParseSlotCount(cnt[:])
	if err != nil {
		return nil, err
	}
	want := wire.SlotVectorSize(n)
	if pages {
		want += n * fabric.PageSize
	}
	if int(h.Len) != want {
		return nil, fmt.Errorf("%v request: %d bytes for %d slots: %w", h.Type, h.Len, n, fabric.ErrProtocol)
	}
	if cap(ss.payload) < wire.SlotVectorSize(n) {
		ss.payload = make([]byte, wire.SlotVectorSize(wire.MaxSlotsPerRequest))
	}
	p := ss.payload[:wire.SlotVectorSize(n)]
	copy(p, cnt[:])
	if _, err := io.ReadFull(ss.br, p[4:]); err != nil {
		return nil, err
	}
	ss.slots, err = wire.ParseSlots(ss.slots[:0], p)
	return ss.slots, err
}

func (ss *session) handleRead(h wire.Header) error {
	slots, err := ss.readSlotVector(h, false)
	if err != nil {
		return err
	}
	ss.srv.counters.readRequests.Add(1)
	ss.srv.counters.readPages.Add(uint64(len(slots)))
	if ss.region == nil {
		ss.fail(h.ID, fmt.Errorf("read: %w", wire.ErrNotOpen))
		return nil
	}
	codes := make([]wire.Code, len(slots))
	bufs := make(net.Buffers, 1, 1+len(slots))
	for i, s := range slots {
		b, err := ss.region.Slot(s)
		if err != nil {
			codes[i] = wire.CodeOf(err)
			continue
		}
		bufs = append(bufs, b)
	}
	pages := len(bufs) - 1
	head := make([]byte, 0, wire.HeaderSize+wire.StatusesSize(len(slots)))
	head = wire.AppendHeader(head, wire.Header{Type: wire.TypeReadReply, ID: h.ID, Len: uint32(wire.StatusesSize(len(slots)) + pages*fabric.PageSize)})
	bufs[0] = wire.AppendStatuses(head, codes)
	ss.reply(bufs)
	return nil
}

func (ss *session) handleWrite(h wire.Header) error {
	slots, err := ss.readSlotVector(h, true)
	if err != nil {
		return err
	}
	ss.srv.counters.writeRequests.Add(1)
	ss.srv.counters.writePages.Add(uint64(len(slots)))
	codes := make([]wire.Code, len(slots))
	targets := make([][]byte, len(slots))
	for i, s := range slots {
		var b []byte
		if ss.region == nil {
			err = wire.ErrNotOpen
		} else {
			b, err = ss.region.Slot(s)
		}
		if err != nil {
			codes[i] = wire.CodeOf(err)
			if ss.discard == nil {
				ss.discard = make([]byte, fabric.PageSize)
			}
			b = ss.discard
		}
		targets[i] = b
	}
	if err := ss.readPagesInto(slots, codes, targets); err != nil {
		return fmt.Errorf("write request pages: %w", err)
	}
	ss.send(wire.TypeStatuses, h.ID, wire.AppendStatuses(nil, codes))
	return nil
}

// pageStorer is a Region that can store runs of whole pages through the
// kernel (pwrite) rather than by a copy into its mapping: the kernel copies
// each page whole, so even a sub-host killed mid-write (SIGKILL, the OOM
// killer) leaves no slot half old, half new.
type pageStorer interface {
	StoreSlots(first uint64, pages []byte) error
}

// writeStagePages is how many pages of a write are received before any is
// applied.
const writeStagePages = 64

// readPagesInto receives one page per slot and stores each only once all of
// it has arrived: a frame cut off midway (a dead client, a reset) leaves
// every slot holding its old page or its new one, never a mix. The
// unacknowledged write may have stored some whole pages; the client treats
// it as not done and rewrites them. Pages for slots that failed (codes) go
// to their discard target.
func (ss *session) readPagesInto(slots []uint64, codes []wire.Code, targets [][]byte) error {
	if ss.stage == nil {
		ss.stage = make([]byte, writeStagePages*fabric.PageSize)
	}
	storer, _ := ss.region.(pageStorer)
	for len(targets) > 0 {
		n := min(len(targets), writeStagePages)
		stage := ss.stage[:n*fabric.PageSize]
		if err := wire.ReadVectors(ss.br, ss.conn, [][]byte{stage}); err != nil {
			return err
		}
		for i := 0; i < n; {
			page := func(k int) []byte { return stage[k*fabric.PageSize : (k+1)*fabric.PageSize] }
			if storer == nil || codes[i] != wire.CodeOK {
				copy(targets[i], page(i))
				i++
				continue
			}
			j := i + 1 // a run of consecutive slots is one pwrite
			for j < n && codes[j] == wire.CodeOK && slots[j] == slots[j-1]+1 {
				j++
			}
			if err := storer.StoreSlots(slots[i], stage[i*fabric.PageSize:j*fabric.PageSize]); err != nil {
				c := wire.CodeOf(err)
				for k := i; k < j; k++ {
					codes[k] = c
				}
				ss.log.Warn().Err(err).Msg("control: storing written pages failed")
			}
			i = j
		}
		slots, codes, targets = slots[n:], codes[n:], targets[n:]
	}
	return nil
}

func (ss *session) handleFree(h wire.Header) error {
	slots, err := ss.readSlotVector(h, false)
	if err != nil {
		return err
	}
	ss.srv.counters.freeRequests.Add(1)
	if ss.region == nil {
		ss.fail(h.ID, fmt.Errorf("free: %w", wire.ErrNotOpen))
		return nil
	}
	codes := make([]wire.Code, len(slots))
	valid := make([]uint64, 0, len(slots))
	for i, s := range slots {
		if s >= ss.region.Slots() {
			codes[i] = wire.CodeSlotRange
			continue
		}
		valid = append(valid, s)
	}
	if err := ss.region.Free(valid...); err != nil {
		c := wire.CodeOf(err)
		for i := range codes {
			if codes[i] == wire.CodeOK {
				codes[i] = c
			}
		}
		ss.log.Warn().Err(err).Msg("control: free failed")
	}
	ss.send(wire.TypeStatuses, h.ID, wire.AppendStatuses(nil, codes))
	return nil
}

func (ss *session) rdma(h wire.Header, qps RDMAParams) {
	resp := ss.srv.cfg.RDMA
	switch {
	case resp == nil:
		ss.fail(h.ID, fmt.Errorf("%v: sub-host serves tcp only: %w", h.Type, fabric.ErrNoRDMA))
	case ss.region == nil:
		ss.fail(h.ID, fmt.Errorf("%v: %w", h.Type, wire.ErrNotOpen))
	case h.Type == wire.TypeRDMAConnect:
		if len(qps.QPs) == 0 {
			ss.fail(h.ID, fmt.Errorf("rdma-connect without queue pairs: %w", fabric.ErrProtocol))
			return
		}
		srv, err := resp.Connect(ss.vm, ss.region, qps)
		if err != nil {
			ss.fail(h.ID, fmt.Errorf("rdma-connect: %w", err))
			return
		}
		ss.served = append(ss.served, srv)
		ss.send(wire.TypeRDMAConnect, h.ID, wire.AppendRDMAParams(nil, srv))
	default:
		if err := resp.Disconnect(ss.vm, qps); err != nil {
			ss.fail(h.ID, fmt.Errorf("rdma-disconnect: %w", err))
			return
		}
		ss.served = ss.served[:0]
		ss.send(wire.TypeAck, h.ID, nil)
	}
}

// releaseRDMA tears down queue pairs a client left behind.
func (ss *session) releaseRDMA() {
	if ss.srv.cfg.RDMA == nil {
		return
	}
	for _, srv := range ss.served {
		if err := ss.srv.cfg.RDMA.Disconnect(ss.vm, srv); err != nil {
			ss.log.Warn().Err(err).Msg("control: rdma teardown")
		}
	}
	ss.served = nil
}
