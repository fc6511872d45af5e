package control

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

func TestKeyring(t *testing.T) {
	k, err := ParseKeyring([]byte("# keys\nvm-a 00112233445566778899aabbccddeeff\n* ffeeddccbbaa99887766554433221100 # default\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := k.Key("vm-a")
	if !ok || a[0] != 0x00 || a[15] != 0xff {
		t.Errorf("key of vm-a = %x, %v", a, ok)
	}
	b, ok := k.Key("vm-b")
	if !ok || b[0] != 0xff {
		t.Errorf("vm-b must fall back to the * key, got %x, %v", b, ok)
	}
	if _, ok := k.Key("../etc"); ok {
		t.Error("an invalid vm id must have no key")
	}
	for _, text := range []string{"", "vm 0011", "vm zz112233445566778899aabbccddeeff", "vm a b", "../x 00112233445566778899aabbccddeeff",
		"v 00112233445566778899aabbccddeeff\nv 00112233445566778899aabbccddeeff"} {
		if _, err := ParseKeyring([]byte(text)); !errors.Is(err, ErrKeyFile) {
			t.Errorf("ParseKeyring(%q) = %v, want ErrKeyFile", text, err)
		}
	}
}

func TestEnsureKeyFileCreatesThenLoads(t *testing.T) {
	path := t.TempDir() + "/psk"
	k1, created, err := EnsureKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first EnsureKeyFile: created=%v err=%v", created, err)
	}
	// Per-VM isolation by default: a new key file grants nothing to anyone.
	if key, ok := k1.Key("vm"); ok {
		t.Fatalf("a fresh key file gives vm a key (%x): want one key per VM, none by default", key)
	}
	added, err := AddKey(path, "vm")
	if err != nil || len(added) != KeySize {
		t.Fatalf("AddKey = %x, %v", added, err)
	}
	k2, created, err := EnsureKeyFile(path)
	if err != nil || created {
		t.Fatalf("second EnsureKeyFile: created=%v err=%v", created, err)
	}
	for i, k := range []*Keyring{k1, k2} { // k1 follows the file without a restart
		if got, ok := k.Key("vm"); !ok || !bytes.Equal(got, added) {
			t.Errorf("keyring %d: key of vm = %x, %v; want %x", i, got, ok, added)
		}
		if _, ok := k.Key("other-vm"); ok {
			t.Errorf("keyring %d: another VM authenticates with vm's key file", i)
		}
	}
	if _, err := AddKey(path, "vm"); !errors.Is(err, ErrKeyFile) {
		t.Errorf("second AddKey of vm = %v, want ErrKeyFile", err)
	}
	if err := RemoveKey(path, "vm"); err != nil {
		t.Fatal(err)
	}
	if _, ok := k1.Key("vm"); ok {
		t.Error("a removed key still authenticates")
	}
	if _, err := AddKey(path, AnyVM); err != nil {
		t.Fatal(err)
	}
	if _, ok := k1.Key("any-vm"); !ok || !slices.Equal(k1.VMs(), []string{AnyVM}) {
		t.Errorf("an explicit * key serves every vm: VMs %v", k1.VMs())
	}
}

func TestKeyFileOpenToOthersRefused(t *testing.T) {
	path := t.TempDir() + "/psk"
	if _, err := AddKey(path, "vm"); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyring(path)
		if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: LoadKeyring = %v; want ErrKeyFileMode naming the chmod", mode, err)
		}
		if _, ok := k.Key("vm"); ok || !errors.Is(k.Err(), ErrKeyFileMode) {
			t.Errorf("mode %04o: a running keyring still grants keys (err %v)", mode, k.Err())
		}
		if _, _, err := EnsureKeyFile(path); !errors.Is(err, ErrKeyFileMode) {
			t.Errorf("mode %04o: EnsureKeyFile = %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Key("vm"); !ok {
		t.Error("key not granted again after chmod 600")
	}
}

func TestAuthAndOpen(t *testing.T) {
	addr, _, st := startServer(t)
	ctx := context.Background()
	c, err := Dial(ctx, addr, "vm-a", testKey, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(); !errors.Is(err, wire.ErrNotOpen) {
		t.Errorf("stats before open = %v, want ErrNotOpen", err)
	}
	if _, err := c.Open("vm-a", 0); !errors.Is(err, wire.ErrNoRegion) {
		t.Errorf("open of a missing region = %v, want ErrNoRegion", err)
	}
	n, err := c.Open("vm-a", 64)
	if err != nil || n != 64 {
		t.Fatalf("open = %d, %v", n, err)
	}
	if _, err := c.Open("vm-a", 65); !errors.Is(err, wire.ErrRegion) {
		t.Errorf("open with another size = %v, want ErrRegion", err)
	}
	s, err := c.Stats()
	if err != nil || s.VM != "vm-a" || s.Slots != 64 {
		t.Errorf("stats = %+v, %v", s, err)
	}
	if _, err := c.Open("vm-b", 64); !errors.Is(err, fabric.ErrForbidden) {
		t.Errorf("open of another vm = %v, want ErrForbidden", err)
	}
	if got := st.List(); len(got) != 1 || got[0] != "vm-a" {
		t.Errorf("store holds %v, want only vm-a", got)
	}
	if _, err := c.RDMAConnect(RDMAParams{QPs: []QP{{QPN: 1}}}); !errors.Is(err, fabric.ErrNoRDMA) {
		t.Errorf("rdma-connect without responder = %v, want ErrNoRDMA", err)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	addr, _, st := startServer(t)
	_, err := Dial(context.Background(), addr, "vm-a", bytes.Repeat([]byte{1}, 32), DialOptions{})
	if !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("dial with a wrong key = %v, want ErrAuth", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the sub-host", err)
	}
	if got := st.List(); len(got) != 0 {
		t.Errorf("a refused client created regions %v", got)
	}
}

// A server that does not know the key cannot pass the client's check.
func TestClientRejectsForgedServerProof(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	go func() {
		defer srv.Close()
		_ = wire.WriteFrame(srv, wire.TypeChallenge, 0, make([]byte, wire.NonceSize))
		if _, _, err := wire.ReadFrame(srv, wire.MaxPayload); err != nil {
			return
		}
		_ = wire.WriteFrame(srv, wire.TypeProof, 1, make([]byte, 32))
	}()
	if err := clientAuth(cli, "vm-a", testKey); !errors.Is(err, fabric.ErrAuth) {
		t.Fatalf("clientAuth against a forged proof = %v, want ErrAuth", err)
	}
}

// A recorded response does not authenticate against a fresh challenge.
func TestReplayedResponseRefused(t *testing.T) {
	addr, _, _ := startServer(t)
	record := func() []byte {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var buf bytes.Buffer
		tee := struct {
			io.Reader
			io.Writer
		}{c, io.MultiWriter(c, &buf)}
		if err := clientAuth(tee, "vm-a", testKey); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	resp := record()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := wire.ReadFrame(c, wire.MaxPayload); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(resp); err != nil {
		t.Fatal(err)
	}
	h, p, err := wire.ReadFrame(c, wire.MaxPayload)
	if err != nil || h.Type != wire.TypeError {
		t.Fatalf("replayed response answered with %v, %v", h.Type, err)
	}
	re, err := wire.ParseError(p)
	if err != nil || !errors.Is(re, fabric.ErrAuth) {
		t.Fatalf("replayed response error = %v, %v; want ErrAuth", re, err)
	}
}

func TestFramesBeforeAuthCloseTheConnection(t *testing.T) {
	addr, _, _ := startServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := wire.ReadFrame(c, wire.MaxPayload); err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteFrame(c, wire.TypeOpen, 1, wire.AppendOpen(nil, wire.Open{VM: "vm-a", Slots: 8})); err != nil {
		t.Fatal(err)
	}
	h, _, err := wire.ReadFrame(c, wire.MaxPayload)
	if err != nil || h.Type != wire.TypeError {
		t.Fatalf("open before auth answered with %v, %v; want an error frame", h.Type, err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after a frame before authentication")
	}
}

func TestBaselines(t *testing.T) {
	addr, _, _ := startServer(t)
	c, err := Dial(context.Background(), addr, "vm-a", testKey, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rate, err := c.BaselineStream(8<<20, 256<<10)
	if err != nil || rate <= 0 {
		t.Fatalf("stream = %v, %v", rate, err)
	}
	rtts, err := c.BaselinePing(50, 32, fabric.PageSize)
	if err != nil || len(rtts) != 50 {
		t.Fatalf("ping = %d rounds, %v", len(rtts), err)
	}
	// The connection is back to frames afterwards.
	if _, err := c.Open("vm-a", 4); err != nil {
		t.Fatalf("open after baselines: %v", err)
	}
}

func TestTLSWrapsTheProtocol(t *testing.T) {
	cert, pool := selfSigned(t)
	st, addr := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	_ = st
	c, err := Dial(context.Background(), addr, "vm-a", testKey, DialOptions{TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.Open("vm-a", 8); err != nil || n != 8 {
		t.Fatalf("open over tls = %d, %v", n, err)
	}
}

func TestShutdownLetsRequestsFinish(t *testing.T) {
	addr, srv, _ := startServer(t)
	c, err := Dial(context.Background(), addr, "vm-a", testKey, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Open("vm-a", 8); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := c.Stats(); !errors.Is(err, fabric.ErrPeer) {
		t.Errorf("stats after shutdown = %v, want ErrPeer", err)
	}
	if _, err := Dial(context.Background(), addr, "vm-a", testKey, DialOptions{Timeout: time.Second}); !errors.Is(err, fabric.ErrPeer) {
		t.Errorf("dial after shutdown = %v, want ErrPeer", err)
	}
}
