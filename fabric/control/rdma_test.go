package control

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/wire"
)

// recordingResponder hands out one server queue pair per client queue pair
// and records teardown.
type recordingResponder struct {
	mu       sync.Mutex
	regionVM string
	torn     []RDMAParams
}

func (r *recordingResponder) Connect(vm string, region Region, client RDMAParams) (RDMAParams, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regionVM = region.VM()
	out := RDMAParams{RKey: 0xabc, Addr: 0x1000, Len: uint64(len(region.Bytes())), MaxRd: 1, MTU: 3}
	for _, q := range client.QPs {
		out.QPs = append(out.QPs, QP{QPN: q.QPN + 100, PSN: 7})
	}
	return out, nil
}

func (r *recordingResponder) Disconnect(vm string, server RDMAParams) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.torn = append(r.torn, server)
	return nil
}

func (r *recordingResponder) teardowns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.torn)
}

func TestRDMAResponderHook(t *testing.T) {
	resp := &recordingResponder{}
	addr, _, _ := startServer(t, func(c *ServerConfig) { c.RDMA = resp })
	c, err := Dial(context.Background(), addr, "vm-r", testKey, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RDMAConnect(RDMAParams{QPs: []QP{{QPN: 1}}}); !errors.Is(err, wire.ErrNotOpen) {
		t.Fatalf("rdma-connect before open = %v, want ErrNotOpen", err)
	}
	if _, err := c.Open("vm-r", 16); err != nil {
		t.Fatal(err)
	}
	srv, err := c.RDMAConnect(RDMAParams{QPs: []QP{{QPN: 1}, {QPN: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.QPs) != 2 || srv.QPs[1].QPN != 102 || srv.Len != 16*fabric.PageSize || resp.vm() != "vm-r" {
		t.Fatalf("server queue pairs %+v for region of %q", srv, resp.vm())
	}
	if err := c.RDMADisconnect(srv); err != nil || resp.teardowns() != 1 {
		t.Fatalf("disconnect = %v, %d teardowns", err, resp.teardowns())
	}
	// Queue pairs a client leaves behind are torn down when it goes.
	if _, err := c.RDMAConnect(RDMAParams{QPs: []QP{{QPN: 3}}}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for resp.teardowns() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if resp.teardowns() != 2 {
		t.Fatalf("%d teardowns after the client left, want 2", resp.teardowns())
	}
}

func (r *recordingResponder) vm() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.regionVM
}
