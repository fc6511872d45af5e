package tcpfallback

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// FuzzReplies feeds arbitrary server bytes to a Transport with one read
// (id 1), one write (id 2) and one stats request (id 3) pending: every call
// must end, successfully or with an error, and nothing may panic.
func FuzzReplies(f *testing.F) {
	frame := func(t wire.Type, id uint32, p []byte) []byte {
		return append(wire.AppendHeader(nil, wire.Header{Type: t, ID: id, Len: uint32(len(p))}), p...)
	}
	readOK := append(wire.AppendStatuses(nil, []wire.Code{wire.CodeOK, wire.CodeSlotRange}), make([]byte, fabric.PageSize)...)
	var seed []byte
	seed = append(seed, frame(wire.TypeReadReply, 1, readOK)...)
	seed = append(seed, frame(wire.TypeStatuses, 2, wire.AppendStatuses(nil, []wire.Code{wire.CodeOK}))...)
	seed = append(seed, frame(wire.TypeStatsReply, 3, wire.AppendStats(nil, wire.Stats{VM: "vm", Slots: 4}))...)
	f.Add(seed)
	f.Add(frame(wire.TypeError, 1, wire.AppendError(nil, fabric.ErrForbidden)))
	f.Add(frame(wire.TypeReadReply, 1, wire.AppendStatuses(nil, []wire.Code{wire.CodeOK, wire.CodeOK})))
	f.Add(frame(wire.TypeStatuses, 9, nil))
	f.Add(frame(wire.TypeAck, 2, nil))
	f.Fuzz(func(t *testing.T, stream []byte) {
		cli, srv := net.Pipe()
		defer srv.Close()
		go func() {
			// Swallow the requests, then play the fuzzed replies and hang up.
			buf := make([]byte, 64<<10)
			go func() {
				for {
					if _, err := srv.Read(buf); err != nil {
						return
					}
				}
			}()
			_, _ = srv.Write(stream)
			srv.Close()
		}()
		tr := newTransport("fuzz", "vm", cli, bufio.NewReaderSize(cli, 2*fabric.PageSize), Options{InFlight: 4, MaxBatch: 8, Timeout: 5 * time.Second})
		tr.slots = 4
		defer tr.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 3)
		go func() {
			done <- tr.ReadSlots(ctx, []fabric.SlotIO{{Slot: 0, Buf: make([]byte, fabric.PageSize)}, {Slot: 1, Buf: make([]byte, fabric.PageSize)}})
		}()
		go func() {
			done <- tr.WriteSlots(ctx, []fabric.SlotIO{{Slot: 2, Buf: make([]byte, fabric.PageSize)}})
		}()
		go func() { _, err := tr.Stats(ctx); done <- err }()
		for range 3 {
			if err := <-done; errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("a call hung on a closed stream: %v", err)
			}
		}
	})
}
