package control

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

func TestServerStats(t *testing.T) {
	addr, srv, _ := startServer(t)
	ctx := context.Background()
	if _, err := Dial(ctx, addr, "vm-a", bytes.Repeat([]byte{1}, 32), DialOptions{}); err == nil {
		t.Fatal("a wrong key was accepted")
	}
	c, err := Dial(ctx, addr, "vm-a", testKey, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open("vm-a", 8); err != nil {
		t.Fatal(err)
	}
	roundTrip := func(typ wire.Type, payload []byte, want wire.Type) {
		t.Helper()
		if err := wire.WriteFrame(c.conn, typ, 100, payload); err != nil {
			t.Fatal(err)
		}
		h, _, err := wire.ReadFrame(c.br, wire.MaxPayload)
		if err != nil || h.Type != want {
			t.Fatalf("%v: reply %v, %v", typ, h.Type, err)
		}
	}
	write := wire.AppendSlots(nil, []uint64{1, 2, 3})
	write = append(write, make([]byte, 3*fabric.PageSize)...)
	roundTrip(wire.TypeWrite, write, wire.TypeStatuses)
	roundTrip(wire.TypeRead, wire.AppendSlots(nil, []uint64{1, 2}), wire.TypeReadReply)
	roundTrip(wire.TypeRead, wire.AppendSlots(nil, []uint64{3, 99}), wire.TypeReadReply)
	roundTrip(wire.TypeFree, wire.AppendSlots(nil, []uint64{1}), wire.TypeStatuses)

	want := ServerStats{Connections: 2, ActiveConnections: 1, AuthFailures: 1,
		ReadRequests: 2, ReadPages: 4, WriteRequests: 1, WritePages: 3, FreeRequests: 1}
	// The refused connection's goroutine may still be finishing.
	waitStats(t, srv, want)
	c.Close()
	want.ActiveConnections = 0
	waitStats(t, srv, want)
}

func waitStats(t *testing.T, srv *Server, want ServerStats) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := srv.Stats()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
