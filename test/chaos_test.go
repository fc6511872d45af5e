package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// chaosPage is slot's content at generation gen: whole-page patterns, so a
// torn page (part old, part new) matches no generation.
func chaosPage(slot uint64, gen uint32) []byte {
	p := make([]byte, fabric.PageSize)
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], slot*0x9e3779b97f4a7c15^uint64(gen)<<32^uint64(i))
	}
	return p
}

// TestIntegrationSubhostChaos kills the sub-host process with SIGKILL in the
// middle of a stream of writes, several rounds, restarting it on the same
// state directory each time. After every round each slot must hold the page
// of its last acknowledged write or of a write still unacknowledged when
// the sub-host died, whole: no acknowledged page lost, no torn page.
func TestIntegrationSubhostChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vmemtrans binary; run without -short")
	}
	bin := buildVmemtrans(t)
	state := t.TempDir()
	key := bytes.Repeat([]byte{0x5a}, 32)
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte("vm-chaos "+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const slots, rounds, batch = 2048, 5, 48
	acked := make([]uint32, slots)     // generation of the last acknowledged write, 0: never written
	pending := make([][]uint32, slots) // generations written since, unacknowledged
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	gen := uint32(0)
	for round := range rounds {
		proc, addr := startSubhostProcess(t, bin, state, psk)
		tr, err := tcpfallback.Dial(ctx, addr, "vm-chaos", key, tcpfallback.Options{Slots: slots, MaxBatch: 16, InFlight: 4, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: dial: %v", round, err)
		}
		verifyChaos(t, ctx, tr, round, acked, pending)

		killAt := time.Now().Add(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		killed := false
		writes, lostAcks := 0, 0
		for !killed || writes == 0 {
			if !killed && time.Now().After(killAt) {
				if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
			b := make([]fabric.SlotIO, batch)
			seen := map[uint64]bool{}
			for i := range b {
				s := rng.Uint64N(slots)
				for seen[s] {
					s = rng.Uint64N(slots)
				}
				seen[s] = true
				gen++
				b[i] = fabric.SlotIO{Slot: s, Buf: chaosPage(s, gen)}
				pending[s] = append(pending[s], gen)
			}
			_ = tr.WriteSlots(ctx, b)
			for _, e := range b {
				g := binary.LittleEndian.Uint64(e.Buf) ^ e.Slot*0x9e3779b97f4a7c15
				if e.Err == nil {
					acked[e.Slot], pending[e.Slot] = uint32(g>>32), nil
					writes++
				} else {
					lostAcks++
				}
			}
			if killed && lostAcks > 0 {
				break
			}
		}
		_ = proc.Wait()
		tr.Close()
		t.Logf("round %d: %d writes acknowledged, %d not before the kill", round, writes, lostAcks)
	}
	_, addr := startSubhostProcess(t, bin, state, psk)
	tr, err := tcpfallback.Dial(ctx, addr, "vm-chaos", key, tcpfallback.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	verifyChaos(t, ctx, tr, rounds, acked, pending)
	checkRegionsCLI(t, bin, state)
}

// checkRegionsCLI lists the regions of a running sub-host's state directory
// and checks that removing one is refused while it runs.
func checkRegionsCLI(t *testing.T, bin, state string) {
	t.Helper()
	out, err := exec.Command(bin, "subhost", "regions", "--state-dir", state, "--json").Output()
	if err != nil {
		t.Fatalf("subhost regions: %v", err)
	}
	var regions []struct {
		VM        string `json:"vm"`
		Slots     uint64 `json:"slots"`
		SizeBytes uint64 `json:"size_bytes"`
		Health    string `json:"health"`
	}
	if err := json.Unmarshal(out, &regions); err != nil || len(regions) != 1 ||
		regions[0].VM != "vm-chaos" || regions[0].Slots != 2048 || regions[0].SizeBytes != 2048*fabric.PageSize || regions[0].Health != "ok" {
		t.Fatalf("subhost regions --json = %s (%v)", out, err)
	}
	msg, err := exec.Command(bin, "subhost", "regions", "remove", "vm-chaos", "--state-dir", state).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "stop the sub-host") {
		t.Fatalf("regions remove under a running sub-host = %v: %s", err, msg)
	}
}

// verifyChaos reads every slot and checks it against what was acknowledged;
// a slot that holds a pending generation now counts as acknowledged.
func verifyChaos(t *testing.T, ctx context.Context, tr *tcpfallback.Transport, round int, acked []uint32, pending [][]uint32) {
	t.Helper()
	r := make([]fabric.SlotIO, len(acked))
	for i := range r {
		r[i] = fabric.SlotIO{Slot: uint64(i), Buf: make([]byte, fabric.PageSize)}
	}
	if err := tr.ReadSlots(ctx, r); err != nil {
		t.Fatalf("round %d: read back: %v", round, err)
	}
	zero := make([]byte, fabric.PageSize)
	bad := 0
	for i, e := range r {
		s := uint64(i)
		ok := false
		if acked[s] == 0 {
			ok = bytes.Equal(e.Buf, zero)
		} else {
			ok = bytes.Equal(e.Buf, chaosPage(s, acked[s]))
		}
		for _, g := range pending[s] {
			if !ok && bytes.Equal(e.Buf, chaosPage(s, g)) {
				ok, acked[s] = true, g
			}
		}
		pending[s] = nil
		if !ok {
			bad++
			if bad <= 5 {
				t.Errorf("round %d: slot %d holds neither its acknowledged page (generation %d) nor a pending one", round, s, acked[s])
			}
		}
	}
	if bad > 0 {
		t.Fatalf("round %d: %d of %d slots lost an acknowledged page or were torn", round, bad, len(acked))
	}
}
