//go:build linux

package test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// splitFixture is a committed fixture guest split by the runtime over
// in-process sub-hosts on loopback.
type splitFixture struct {
	f        *fixture
	layout   []fabric.PhysRange
	free     map[fabric.GFN]bool
	rt       *kvmhost.Runtime
	subhosts []*controltest.Subhost
	keys     [][]byte
	trans    []fabric.Transport
}

const splitVM = "split-test-vm"

// startSplit splits fixture name over n sub-hosts with pct resident and
// the workload configured by wl (its WritableGFNs are the guest's free
// pages). Everything stops when the test ends.
func startSplit(t *testing.T, name string, n, pct int, wl kvmhost.WorkloadConfig) *splitFixture {
	t.Helper()
	f, k := fixtureKernel(t, name, 2)
	s := &splitFixture{f: f, layout: kvmhost.ImageLayout(f.img.Extents()), free: map[fabric.GFN]bool{}}
	free, err := kvmhost.FreeGFNs(k, s.layout)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range free {
		s.free[g] = true
	}
	wl.WritableGFNs = free
	ctx := context.Background()
	for i := 0; i < n; i++ {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		keys, err := control.NewKeyring(map[string][]byte{splitVM: key})
		if err != nil {
			t.Fatal(err)
		}
		sh := controltest.Start(t, keys)
		tr, err := tcpfallback.Dial(ctx, sh.Addr, splitVM, key, tcpfallback.Options{Slots: kvmhost.SlotsNeeded(s.layout, n)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		s.subhosts, s.keys, s.trans = append(s.subhosts, sh), append(s.keys, key), append(s.trans, tr)
	}
	s.rt, err = kvmhost.New(ctx, kvmhost.Config{Memory: f.img, Layout: s.layout, Subhosts: s.trans, ResidentPct: pct, Workload: wl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.rt.Close() })
	if err := s.rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// memory is an IDS reader of the split VM by method m, with its own
// transports, as an IDS process has.
func (s *splitFixture) memory(t *testing.T, m fabric.Method, cacheBytes int64) *fabric.Memory {
	t.Helper()
	ram, err := s.rt.RAMFile()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	cfg := fabric.MemoryConfig{RAM: ram, Locations: s.rt.Locations(), Layout: s.layout, Subhosts: s.idsTransports(t), Method: m, CacheBytes: cacheBytes}
	if m == fabric.MethodSelf {
		cfg.Exchanger = s.rt
	}
	mem, err := fabric.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

// idsTransports dials every sub-host as an IDS process does, with its own
// connections.
func (s *splitFixture) idsTransports(t *testing.T) map[uint8]fabric.Transport {
	t.Helper()
	subs := map[uint8]fabric.Transport{}
	for i, sh := range s.subhosts {
		tr, err := tcpfallback.Dial(context.Background(), sh.Addr, splitVM, s.keys[i], tcpfallback.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		subs[uint8(i)] = tr
	}
	return subs
}
