package control

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

func fillPage(b byte) []byte { return bytes.Repeat([]byte{b}, fabric.PageSize) }

// sendWrite sends a write request of one page per slot, cut after cut
// bytes of the pages (all of it when cut < 0), then hangs up.
func sendWrite(t *testing.T, conn net.Conn, id uint32, slots []uint64, pages []byte, cut int) {
	t.Helper()
	body := wire.AppendSlots(nil, slots)
	frame := wire.AppendHeader(nil, wire.Header{Type: wire.TypeWrite, ID: id, Len: uint32(len(body) + len(pages))})
	frame = append(append(frame, body...), pages...)
	if cut >= 0 {
		frame = frame[:len(frame)-len(pages)+cut]
	}
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// A write frame cut off midway must leave each slot with its old page or
// its new page, never part of each.
func TestCutWriteFrameTearsNoSlot(t *testing.T) {
	for _, cut := range []int{100, fabric.PageSize + 2000, 70*fabric.PageSize + 5} {
		addr, srv, st := startServer(t)
		ctx := context.Background()
		c, err := Dial(ctx, addr, "vm-a", testKey, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const n = 80
		if _, err := c.Open("vm-a", n); err != nil {
			t.Fatal(err)
		}
		slots := make([]uint64, n)
		var old, neu []byte
		for i := range slots {
			slots[i] = uint64(i)
			old = append(old, fillPage(0xAA)...)
			neu = append(neu, fillPage(0x55)...)
		}
		conn := c.conn
		sendWrite(t, conn, 1, slots, old, -1)
		// Wait for the full write's acknowledgement (a statuses frame).
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if h, _, err := wire.ReadFrame(c.br, wire.MaxPayload); err != nil || h.Type != wire.TypeStatuses {
			t.Fatalf("full write: %+v, %v", h, err)
		}
		sendWrite(t, conn, 2, slots, neu, cut)
		conn.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if srv.sessions.Len() == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("server did not drop the cut connection")
			}
			time.Sleep(5 * time.Millisecond)
		}
		r, err := st.Lookup("vm-a")
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(n) {
			b, _ := r.Slot(i)
			if !bytes.Equal(b, fillPage(0xAA)) && !bytes.Equal(b, fillPage(0x55)) {
				t.Fatalf("cut at %d: slot %d holds a mix of old and new pages", cut, i)
			}
			if int(i+1)*fabric.PageSize > cut && !bytes.Equal(b, fillPage(0xAA)) {
				t.Fatalf("cut at %d: slot %d changed though its page never arrived whole", cut, i)
			}
		}
	}
}
