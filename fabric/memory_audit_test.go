//go:build linux

package fabric_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// lyingExchanger answers every frame done without moving any, and records
// what Memory's audit tells it.
type lyingExchanger struct {
	mu      sync.Mutex
	audits  [][2]int
	blocked bool // never answer: wait for the request's end
}

func (l *lyingExchanger) MakeResident(ctx context.Context, gfns []fabric.GFN) []error {
	errs := make([]error, len(gfns))
	if l.blocked {
		<-ctx.Done()
		for i := range errs {
			errs[i] = ctx.Err()
		}
	}
	return errs
}

func (l *lyingExchanger) Audit(done, unmoved int) {
	l.mu.Lock()
	l.audits = append(l.audits, [2]int{done, unmoved})
	l.mu.Unlock()
}

// A frame answered done whose word did not move is not trusted: it is read
// by proxy, counted unverified, and the exchanger hears of it.
func TestMemorySelfDistrustsUnmovedFrames(t *testing.T) {
	content := stampedContent(16)
	vm := newFakeVM(t, content, 1, 16)
	scatter(t, vm, 2)
	ex := &lyingExchanger{}
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodSelf, Exchanger: ex})
	if !bytes.Equal(readAll(t, m, 16), content) {
		t.Fatal("wrong bytes")
	}
	s := m.Stats()
	if s.ExchangeUnverified != 8 || s.PagesExchanged != 0 || s.RemotePagesFetched != 8 || s.FailedPages != 0 {
		t.Errorf("stats %+v: want 8 unverified frames read by proxy", s)
	}
	if len(ex.audits) != 1 || ex.audits[0] != [2]int{8, 8} {
		t.Errorf("audits %v, want one of 8 done, 8 unmoved", ex.audits)
	}
}

// An exchanger that never answers gets half the read's time; the rest
// reads the frames by proxy, so the read succeeds within its timeout.
func TestMemorySelfBoundsASilentExchanger(t *testing.T) {
	content := stampedContent(16)
	vm := newFakeVM(t, content, 1, 16)
	scatter(t, vm, 2)
	ex := &lyingExchanger{blocked: true}
	const timeout = 600 * time.Millisecond
	m := vm.memory(t, fabric.MemoryConfig{Method: fabric.MethodSelf, Exchanger: ex, Timeout: timeout})
	start := time.Now()
	if !bytes.Equal(readAll(t, m, 16), content) {
		t.Fatal("wrong bytes")
	}
	if took := time.Since(start); took > timeout {
		t.Errorf("read took %v, over its timeout %v", took, timeout)
	}
	if s := m.Stats(); s.ExchangeFallbacks != 8 || s.RemotePagesFetched != 8 {
		t.Errorf("stats %+v: want 8 fallbacks read by proxy", s)
	}
	if len(ex.audits) != 0 {
		t.Errorf("audits %v of an exchanger that answered nothing", ex.audits)
	}
}
