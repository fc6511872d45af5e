//go:build linux

package test

import (
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
	"github.com/vmemtrans/vmemtrans/kvmhost"
)

// A sub-host that dies while an IDS scans the split VM costs the pages it
// holds, reported page by page as unreadable (never read as zeros, never a
// hang); once it is back on its state, every page is back.
func TestIntegrationSubhostDeathMidScan(t *testing.T) {
	s := startSplit(t, "linux-6.1-attack", 2, 25, kvmhost.WorkloadConfig{})
	pat := [][]byte{[]byte("vmt_hideme")}
	want, err := scan.Memory(s.f.img, pat, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}

	mem := s.memory(t, fabric.MethodProxy, 0)
	dead := s.subhosts[1]
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	res, err := scan.Memory(mem, pat, scan.Options{})
	if !errors.Is(err, scan.ErrIncomplete) {
		t.Fatalf("scan with a dead sub-host: %v, want ErrIncomplete", err)
	}
	var lost uint64
	for _, u := range res.Unreadable {
		lost += u.Len / fabric.PageSize
		if !errors.Is(u.Cause, fabric.ErrPeer) && !errors.Is(u.Cause, fabric.ErrClosed) {
			t.Fatalf("unreadable run at %#x: %v, want the dead peer named", u.Addr, u.Cause)
		}
	}
	held := uint64(0)
	for _, r := range s.layout {
		for g := fabric.GFNOf(r.Start); g < fabric.GFNOf(r.End); g++ {
			if w := s.rt.Locations().Load(g); w.State() == fabric.StateRemote && w.SubHost() == 1 {
				held++
			}
		}
	}
	if lost != held {
		t.Errorf("%d pages unreadable, the dead sub-host held %d", lost, held)
	}
	t.Logf("dead sub-host: %d pages reported unreadable, %d matches still found in the rest", lost, len(res.Matches))

	if err := dead.Restart(); err != nil {
		t.Fatal(err)
	}
	again := s.memory(t, fabric.MethodProxy, 0)
	res, err = scan.Memory(again, pat, scan.Options{})
	if err != nil {
		t.Fatalf("scan after the sub-host came back: %v", err)
	}
	if len(res.Matches) != len(want.Matches) {
		t.Fatalf("%d matches after restart, unsplit image has %d", len(res.Matches), len(want.Matches))
	}
	for i := range res.Matches {
		if res.Matches[i] != want.Matches[i] {
			t.Fatalf("match %d at %#x, unsplit at %#x", i, res.Matches[i].Addr, want.Matches[i].Addr)
		}
	}
}
