package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/rdma"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// On a host without RDMA (or with --rdma off) the dialer falls back to TCP
// and the transport works.
func TestDialTransportFallsBackToTCP(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	sh := controltest.Start(t, controltest.SharedKey(t, key))
	log = zerolog.Nop()
	modes := []string{"off"}
	if devs, _ := rdma.Discover(); len(devs) == 0 {
		modes = append(modes, "auto")
	}
	for _, mode := range modes {
		tr, err := dialTransport(context.Background(), sh.Addr, "vm", key, mode, tcpfallback.Options{Slots: 4})
		if err != nil {
			t.Fatalf("mode %s: %v", mode, err)
		}
		if tr.Kind() != "tcp" || tr.Slots() != 4 {
			t.Fatalf("mode %s: kind %q slots %d, want tcp 4", mode, tr.Kind(), tr.Slots())
		}
		b := []fabric.SlotIO{{Slot: 1, Buf: bytes.Repeat([]byte{9}, fabric.PageSize)}}
		if err := tr.WriteSlots(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		b[0].Buf = make([]byte, fabric.PageSize)
		if err := tr.ReadSlots(context.Background(), b); err != nil || b[0].Buf[100] != 9 {
			t.Fatalf("mode %s: read back %v %d", mode, err, b[0].Buf[100])
		}
		tr.Close()
	}
	if _, err := dialTransport(context.Background(), sh.Addr, "vm", key, "nosuchdev", tcpfallback.Options{Slots: 4}); err == nil {
		t.Fatal("a named device that does not exist must be an error, not a silent fallback")
	}
}
