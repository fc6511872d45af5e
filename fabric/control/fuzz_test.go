package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Every decoder of peer bytes either accepts and re-encodes to the same
// bytes, or rejects with ErrProtocol; none panics.

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, Header{Type: TypeRead, ID: 7, Len: 12}))
	f.Add(AppendHeader(nil, Header{Type: TypeBaselinePing, ID: 1<<32 - 1, Len: MaxPayload}))
	f.Add([]byte("VM\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if got := AppendHeader(nil, h); !bytes.Equal(got, b[:HeaderSize]) {
			t.Fatalf("header %+v re-encodes to %x, read from %x", h, got, b[:HeaderSize])
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(AppendResponse(nil, Response{VM: "vm-a"}))
	f.Add([]byte{0})
	f.Add([]byte{200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if !bytes.Equal(AppendResponse(nil, r), b) {
			t.Fatalf("response %+v does not re-encode to its input", r)
		}
	})
}

func FuzzParseOpen(f *testing.F) {
	f.Add(AppendOpen(nil, Open{VM: "vm-a", Slots: 1 << 20}))
	f.Add([]byte{3, '.', '.', '/', 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOpen(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if !ValidVMID(o.VM) || !bytes.Equal(AppendOpen(nil, o), b) {
			t.Fatalf("open %+v accepted from %x", o, b)
		}
	})
}

func FuzzParseSlots(f *testing.F) {
	f.Add(AppendSlots(nil, []uint64{0, 1, 1 << 40}))
	f.Add(AppendSlots(nil, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSlots(nil, b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(s) > MaxSlotsPerRequest || !bytes.Equal(AppendSlots(nil, s), b) {
			t.Fatalf("%d slots accepted from %d bytes", len(s), len(b))
		}
	})
}

func FuzzParseStatuses(f *testing.F) {
	f.Add(AppendStatuses(nil, []Code{CodeOK, CodeSlotRange, CodeOK}), 3)
	f.Add(AppendStatuses(nil, nil), 0)
	f.Add([]byte{0, 0, 0, 1, 99}, 1)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		if want < 0 || want > MaxSlotsPerRequest {
			return
		}
		codes, ok, err := ParseStatuses(b, want)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(codes) != want || ok > want {
			t.Fatalf("%d codes, %d ok for %d wanted", len(codes), ok, want)
		}
	})
}

func FuzzParseStats(f *testing.F) {
	f.Add(AppendStats(nil, Stats{VM: "vm-a", Slots: 9, ResidentBytes: 4096}))
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStats(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if !bytes.Equal(AppendStats(nil, s), b) {
			t.Fatalf("stats %+v does not re-encode to its input", s)
		}
	})
}

func FuzzParseError(f *testing.F) {
	f.Add(AppendError(nil, fabric.ErrForbidden))
	f.Add([]byte{byte(codeLimit), 0, 0})
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		re, err := ParseError(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if re.Code == CodeOK || re.Code >= codeLimit || !errors.Is(re, re.Code.Err()) {
			t.Fatalf("remote error %+v accepted", re)
		}
	})
}

func FuzzParseQPInfos(f *testing.F) {
	q := QPInfo{QPN: 0x11, PSN: 0x22, RKey: 7, Addr: 1 << 40, Length: 1 << 30, LID: 3, MTU: 5}
	copy(q.GID[:], "0123456789abcdef")
	f.Add(AppendQPInfos(nil, []QPInfo{q, q}))
	f.Add(AppendQPInfos(nil, nil))
	f.Add([]byte{65})
	f.Fuzz(func(t *testing.T, b []byte) {
		qps, err := ParseQPInfos(b)
		if err != nil {
			if !errors.Is(err, fabric.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if len(qps) > MaxQPs || !bytes.Equal(AppendQPInfos(nil, qps), b) {
			t.Fatalf("%d queue pairs do not re-encode to their input", len(qps))
		}
	})
}

func FuzzParseBaseline(f *testing.F) {
	f.Add(AppendBaselineStream(nil, BaselineStream{Total: 1 << 20, Chunk: 1 << 16}))
	f.Add(AppendBaselinePing(nil, BaselinePing{Rounds: 10, Request: 32, Reply: 4096}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseBaselineStream(b); err == nil {
			if s.Total > MaxBaselineBytes || s.Chunk == 0 || s.Chunk > MaxBaselineChunk {
				t.Fatalf("stream %+v accepted", s)
			}
		} else if !errors.Is(err, fabric.ErrProtocol) {
			t.Fatalf("error %v does not wrap ErrProtocol", err)
		}
		if p, err := ParseBaselinePing(b); err == nil {
			if p.Rounds > MaxBaselineRounds || p.Request == 0 || p.Reply > MaxBaselineFrame {
				t.Fatalf("ping %+v accepted", p)
			}
		} else if !errors.Is(err, fabric.ErrProtocol) {
			t.Fatalf("error %v does not wrap ErrProtocol", err)
		}
	})
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("vm-a 00112233445566778899aabbccddeeff\n* 00112233445566778899aabbccddeeff\n"))
	f.Add([]byte("# nothing\n"))
	f.Add([]byte("vm\t00112233445566778899aabbccddeeffaa # c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKeyring(b)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("error %v does not wrap ErrKeyFile", err)
			}
			return
		}
		for vm, key := range k.keys {
			if (vm != AnyVM && !ValidVMID(vm)) || len(key) < MinKeySize {
				t.Fatalf("keyring accepted vm %q with a key of %d bytes", vm, len(key))
			}
		}
	})
}

// FuzzSession feeds arbitrary bytes to an authenticated server connection:
// the server must neither panic nor hang, and must keep serving others.
func FuzzSession(f *testing.F) {
	open := AppendOpen(nil, Open{VM: "vm-a", Slots: 8})
	seed := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	frame := func(t Type, id uint32, p []byte) []byte {
		return append(AppendHeader(nil, Header{Type: t, ID: id, Len: uint32(len(p))}), p...)
	}
	f.Add(seed(frame(TypeOpen, 1, open), frame(TypeRead, 2, AppendSlots(nil, []uint64{0, 9, 3}))))
	f.Add(seed(frame(TypeOpen, 1, open), frame(TypeWrite, 2, append(AppendSlots(nil, []uint64{1}), make([]byte, fabric.PageSize)...))))
	f.Add(seed(frame(TypeOpen, 1, open), frame(TypeFree, 2, AppendSlots(nil, []uint64{1, 100})), frame(TypeStats, 3, nil)))
	f.Add(seed(frame(TypeRead, 1, AppendSlots(nil, []uint64{0}))))
	f.Add(seed(frame(TypeRDMAConnect, 1, AppendQPInfos(nil, []QPInfo{{QPN: 1}}))))
	f.Add(seed(frame(TypeBaselinePing, 1, AppendBaselinePing(nil, BaselinePing{Rounds: 1, Request: 1, Reply: 1})), []byte{0}))
	f.Add([]byte("VM\x01\x07\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x04\xff\xff\xff\xff"))
	addr, _, _ := startServer(f, func(c *ServerConfig) { c.BaselineLimit = 1 << 20 })
	f.Fuzz(func(t *testing.T, b []byte) {
		conn, br, err := DialAuth(context.Background(), addr, "vm-a", testKey, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { _, _ = conn.Write(b); conn.(*net.TCPConn).CloseWrite() }()
		// A server that hangs up on a malformed frame while our bytes are
		// still unread makes the kernel send a reset: that is finishing too.
		if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server did not finish the connection: %v", err)
		}
		c, err := Dial(context.Background(), addr, "vm-b", testKey, DialOptions{})
		if err != nil {
			t.Fatalf("server stopped serving: %v", err)
		}
		defer c.Close()
		if _, err := c.Open("vm-b", 4); err != nil {
			t.Fatalf("server stopped serving: %v", err)
		}
	})
}
