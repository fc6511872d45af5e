package fabrictest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// The suite is only worth something if it fails broken transports. Each
// flaw below wraps a MemTransport; a child test process runs the suite
// against it and must fail the named subtest.

const brokenEnv = "VMEMTRANS_FABRICTEST_BROKEN"

type flawed struct {
	*MemTransport
	flaw string
}

func (f flawed) ReadSlots(ctx context.Context, b []fabric.SlotIO) error {
	switch f.flaw {
	case "ignores-context":
		ctx = context.Background()
	case "wrong-slot":
		for i := range b {
			b[i].Slot ^= 1
		}
		defer func() {
			for i := range b {
				b[i].Slot ^= 1
			}
		}()
	}
	return f.do(ctx, b, f.MemTransport.ReadSlots)
}

func (f flawed) WriteSlots(ctx context.Context, b []fabric.SlotIO) error {
	return f.do(ctx, b, f.MemTransport.WriteSlots)
}

func (f flawed) do(ctx context.Context, b []fabric.SlotIO, call func(context.Context, []fabric.SlotIO) error) error {
	var saved []error
	if f.flaw == "stale-err" {
		for _, e := range b {
			saved = append(saved, e.Err)
		}
	}
	err := call(ctx, b)
	switch f.flaw {
	case "stale-err":
		for i := range b {
			if b[i].Err == nil {
				b[i].Err = saved[i]
			}
		}
	case "no-partial":
		return nil
	}
	return err
}

func (f flawed) Slots() uint64 {
	if f.flaw == "wrong-size" {
		return f.MemTransport.Slots() + 1
	}
	return f.MemTransport.Slots()
}

// TestBrokenHelper is the child side: it does nothing unless started by
// TestSuiteCatchesBrokenTransports.
func TestBrokenHelper(t *testing.T) {
	flaw := os.Getenv(brokenEnv)
	if flaw == "" {
		return
	}
	Run(t, func(_ testing.TB, slots uint64) Peer {
		m := NewMemTransport(slots, 0)
		kill := m.Kill
		if flaw == "kill-ignored" {
			kill = func() {}
		}
		return Peer{Transport: flawed{m, flaw}, Kill: kill}
	})
}

func TestSuiteCatchesBrokenTransports(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		return
	}
	for flaw, subtest := range map[string]string{
		"ignores-context": "CancelledContext",
		"wrong-slot":      "RoundTrip",
		"stale-err":       "StaleEntryErrCleared",
		"no-partial":      "BadEntries",
		"wrong-size":      "Identity",
		"kill-ignored":    "PeerDeathMidBatch",
	} {
		t.Run(flaw, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenHelper$", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+flaw)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a transport with flaw %q", flaw)
			}
			if want := "--- FAIL: TestBrokenHelper/" + subtest + " "; !strings.Contains(string(out), want) {
				t.Fatalf("flaw %q: subtest %s did not fail; output:\n%s", flaw, subtest, out)
			}
		})
	}
}
