//go:build linux

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
	"github.com/vmemtrans/vmemtrans/kvmhost"
	"github.com/vmemtrans/vmemtrans/kvmhost/agent"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
)

var agentKey = bytes.Repeat([]byte{0xa7}, 32)

// runtimeToucher stands in for the guest's kcore read of a frame: the
// access faults to the VMM, whose fault path is the runtime paging it in.
type runtimeToucher struct{ rt *kvmhost.Runtime }

func (r runtimeToucher) Touch(ctx context.Context, gfns []fabric.GFN, errs []error) {
	copy(errs, r.rt.MakeResident(ctx, gfns))
}

// lyingToucher answers done without touching anything.
type lyingToucher struct{}

func (lyingToucher) Touch(_ context.Context, _ []fabric.GFN, errs []error) { clear(errs) }

// silentToucher never finishes a request (until the server closes).
type silentToucher struct{}

func (silentToucher) Touch(ctx context.Context, _ []fabric.GFN, errs []error) {
	<-ctx.Done()
	for i := range errs {
		errs[i] = ctx.Err()
	}
}

// logLines collects zerolog output.
type logLines struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) count(level, text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, `"level":"`+level+`"`) && strings.Contains(line, text) {
			n++
		}
	}
	return n
}

// startAgent serves an in-guest agent touching pages by tc on a unix
// socket (as QEMU's chardev of its virtio-serial port would be) and
// returns its address.
func startAgent(t *testing.T, tc agent.PageToucher) string {
	t.Helper()
	srv, err := agent.NewServer(agent.ServerConfig{Key: agentKey, Toucher: tc, Log: zerolog.Nop(), TouchTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix:" + path
}

func dialAgent(t *testing.T, addr string, logs *logLines) *agent.Client {
	t.Helper()
	c, err := agent.Dial(context.Background(), addr, agent.ClientConfig{Key: agentKey, Timeout: time.Second, Log: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// selfMemory is an IDS reader of the split VM whose self paging goes
// through the agent client c.
func (s *splitFixture) selfMemory(t *testing.T, c *agent.Client) *fabric.Memory {
	t.Helper()
	ram, err := s.rt.RAMFile()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	mem, err := fabric.NewMemory(fabric.MemoryConfig{RAM: ram, Locations: s.rt.Locations(), Layout: s.layout,
		Subhosts: s.idsTransports(t), Method: fabric.MethodSelf, Exchanger: c, Timeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

// remoteGFNs picks up to n frames that are remote now, spread over the layout.
func (s *splitFixture) remoteGFNs(n int) []fabric.GFN {
	var all []fabric.GFN
	for _, r := range s.layout {
		for g := fabric.GFNOf(r.Start); g < fabric.GFNOf(r.End); g++ {
			if s.rt.Locations().Load(g).State() == fabric.StateRemote {
				all = append(all, g)
			}
		}
	}
	if len(all) <= n {
		return all
	}
	out := make([]fabric.GFN, n)
	for i := range out {
		out[i] = all[i*len(all)/n]
	}
	return out
}

// readPages reads gfns through r in batches of batch pages.
func readPages(t *testing.T, r physmem.Reader, gfns []fabric.GFN, batch int) [][]byte {
	t.Helper()
	out := make([][]byte, len(gfns))
	for lo := 0; lo < len(gfns); lo += batch {
		var rs []physmem.Range
		for i := lo; i < min(lo+batch, len(gfns)); i++ {
			out[i] = make([]byte, fabric.PageSize)
			rs = append(rs, physmem.Range{Addr: gfns[i].Addr(), Buf: out[i]})
		}
		if err := r.ReadPhys(rs); err != nil {
			t.Fatalf("read of %d pages from gfn %#x: %v", len(rs), uint64(gfns[lo]), err)
		}
	}
	return out
}

func samePages(t *testing.T, what string, gfns []fabric.GFN, got, want [][]byte) {
	t.Helper()
	for i := range gfns {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: gfn %#x differs from the unsplit image", what, uint64(gfns[i]))
		}
	}
}

// An agent that answers done without touching anything is caught by the
// location-word check: the frames are read by proxy paging (whole-memory
// scan equal to the unsplit image's), counted unverified, and after two
// lying batches the client stops asking it, reporting that once.
func TestIntegrationAgentLying(t *testing.T) {
	s := startSplit(t, "linux-6.1-attack", 2, 25, kvmhost.WorkloadConfig{})
	var logs logLines
	c := dialAgent(t, startAgent(t, lyingToucher{}), &logs)
	mem := s.selfMemory(t, c)
	pat := [][]byte{[]byte("vmt_hideme"), []byte("swapper/0")}
	want, err := scan.Memory(s.f.img, pat, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := scan.Memory(mem, pat, scan.Options{})
	if err != nil {
		t.Fatalf("scan through a lying agent: %v", err)
	}
	if len(got.Matches) != len(want.Matches) || len(want.Matches) == 0 {
		t.Fatalf("%d matches, unsplit image has %d", len(got.Matches), len(want.Matches))
	}
	for i := range got.Matches {
		if got.Matches[i] != want.Matches[i] {
			t.Fatalf("match %d at %#x, unsplit at %#x", i, got.Matches[i].Addr, want.Matches[i].Addr)
		}
	}
	gfns := s.remoteGFNs(64)
	samePages(t, "pages through a lying agent", gfns, readPages(t, mem, gfns, 16), readPages(t, s.f.img, gfns, 16))

	ms, cs := mem.Stats(), c.Stats()
	t.Logf("memory %+v; agent client %+v", ms, cs)
	if ms.ExchangeUnverified == 0 || ms.PagesExchanged != 0 || ms.FailedPages != 0 || ms.RemotePagesFetched == 0 {
		t.Errorf("memory stats %+v: want unverified answers, nothing exchanged, all read by proxy", ms)
	}
	if !cs.Distrusted || cs.Trips != 1 || !strings.HasPrefix(cs.Reason, "lying") || cs.Skipped == 0 || cs.Unmoved == 0 {
		t.Errorf("agent client %+v: want it distrusted as lying, once, and skipped after", cs)
	}
	if n := logs.count("warn", "not asking this agent"); n != 1 {
		t.Errorf("lying agent reported %d times, want once", n)
	}
	if rs := s.rt.Stats(); rs.ExchangedPages != 0 {
		t.Errorf("the runtime paged in %d frames for a lying agent", rs.ExchangedPages)
	}
}

// An agent that never answers costs one bounded wait: the reads succeed by
// proxy paging, it is reported once, and later batches do not wait.
func TestIntegrationAgentSilent(t *testing.T) {
	s := startSplit(t, "linux-6.1-clean", 1, 25, kvmhost.WorkloadConfig{})
	var logs logLines
	c := dialAgent(t, startAgent(t, silentToucher{}), &logs)
	mem := s.selfMemory(t, c)
	gfns := s.remoteGFNs(256)
	want := readPages(t, s.f.img, gfns, 16)
	start := time.Now()
	first := readPages(t, mem, gfns[:16], 16)
	firstTook := time.Since(start)
	start = time.Now()
	rest := readPages(t, mem, gfns[16:], 16)
	restTook := time.Since(start)
	samePages(t, "pages through a silent agent", gfns, append(first, rest...), want)
	t.Logf("first batch %v (waited for the agent), the other 15 batches %v", firstTook, restTook)
	if firstTook > 3*time.Second {
		t.Errorf("the first batch took %v: the wait for a silent agent must be bounded by its timeout (1s)", firstTook)
	}
	if restTook > firstTook {
		t.Errorf("15 later batches took %v, longer than the one that waited (%v): they must not wait for the agent", restTook, firstTook)
	}
	ms, cs := mem.Stats(), c.Stats()
	if ms.FailedPages != 0 || ms.ExchangeFallbacks != uint64(len(gfns)) || ms.PagesExchanged != 0 {
		t.Errorf("memory stats %+v", ms)
	}
	if !cs.Distrusted || cs.Trips != 1 || cs.Timeouts != 1 || cs.Skipped != uint64(len(gfns)-16) {
		t.Errorf("agent client %+v", cs)
	}
	if n := logs.count("warn", "not asking this agent"); n != 1 {
		t.Errorf("silent agent reported %d times, want once", n)
	}
}

// An honest agent (its touch makes the runtime page the frame in, as the
// VMM's fault path would) makes the frames resident: they are read
// locally, verified, and equal to the unsplit image.
func TestIntegrationAgentHonest(t *testing.T) {
	s := startSplit(t, "linux-6.1-clean", 1, 25, kvmhost.WorkloadConfig{})
	var logs logLines
	c := dialAgent(t, startAgent(t, runtimeToucher{s.rt}), &logs)
	mem := s.selfMemory(t, c)
	gfns := s.remoteGFNs(128)
	got := readPages(t, mem, gfns, 32)
	samePages(t, "pages through an honest agent", gfns, got, readPages(t, s.f.img, gfns, 32))
	ms, cs := mem.Stats(), c.Stats()
	t.Logf("memory %+v; agent client %+v", ms, cs)
	if ms.PagesExchanged != uint64(len(gfns)) || ms.RemotePagesFetched != 0 || ms.ExchangeUnverified != 0 ||
		ms.ExchangeFallbacks != 0 || ms.LocalPages < uint64(len(gfns)) {
		t.Errorf("memory stats %+v: want every frame exchanged and read locally", ms)
	}
	if cs.Distrusted || cs.Done != uint64(len(gfns)) {
		t.Errorf("agent client %+v", cs)
	}
	if rs := s.rt.Stats(); rs.ExchangedPages < uint64(len(gfns)) {
		t.Errorf("runtime paged in %d frames on request, want %d", rs.ExchangedPages, len(gfns))
	}
	if logs.count("warn", "") != 0 {
		t.Errorf("warnings for an honest agent: %s", logs.b.String())
	}
}

// The CLI end to end: `vmemtrans agent touch --vm` picks remote frames,
// the agent makes them resident, and each is verified local in the
// location map with the runtime's page-in counters to show for it; `ps
// --method self --agent` equals ps of the unsplit image; a wrong key is
// refused.
func TestIntegrationAgentCLI(t *testing.T) {
	s := startSplit(t, "linux-6.1-clean", 1, 25, kvmhost.WorkloadConfig{})
	addr := startAgent(t, runtimeToucher{s.rt})
	sock := s.serve(t)
	bin := buildVmemtrans(t)
	keyFile := filepath.Join(t.TempDir(), "agent.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("a7", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "agent", "touch", "--vm", sock, "--agent", addr, "--agent-key-file", keyFile, "--pages", "32", "--json").Output()
	if err != nil {
		t.Fatalf("agent touch: %v\n%s", err, out)
	}
	var rep struct {
		Requested, Done int
		Verified        *int
		Runtime         map[string]uint64 `json:"runtime_delta"`
		Results         []struct{ GFN, Answer, Before, After string }
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Requested != 32 || rep.Done != 32 || rep.Verified == nil || *rep.Verified != 32 || rep.Runtime["exchanged_pages_total"] != 32 {
		t.Fatalf("agent touch report: %s", out)
	}
	for _, r := range rep.Results {
		if r.Before != "remote" || r.After != "local" || r.Answer != "done" {
			t.Fatalf("frame %+v", r)
		}
	}

	want, err := exec.Command(bin, "ps", "--image", fixturePath("linux-6.1-clean", "memory.elf.zst"), "--json").Output()
	if err != nil {
		t.Fatalf("ps of the image: %v", err)
	}
	got, err := exec.Command(bin, "ps", "--vm", sock, "--method", "self", "--rdma", "off", "--agent", addr, "--agent-key-file", keyFile, "--json").Output()
	if err != nil {
		t.Fatalf("ps through the agent: %v\n%s", err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ps through the agent differs from ps of the unsplit image")
	}

	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte(strings.Repeat("01", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "agent", "touch", "--agent", addr, "--agent-key-file", bad, "--gfn", "0x100").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "authentication failed") {
		t.Fatalf("wrong key: %v\n%s", err, out)
	}
}

// serve puts the runtime on a control socket, as `vmemtrans mainhost` does.
func (s *splitFixture) serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "vm.sock")
	ln, err := vmsock.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	var subs []vmsock.Subhost
	for i, sh := range s.subhosts {
		subs = append(subs, vmsock.Subhost{ID: uint8(i), Addr: sh.Addr, VM: splitVM, Key: s.keys[i]})
	}
	info := vmsock.VMInfo{VM: splitVM, Layout: s.layout, RAMSize: s.layout[len(s.layout)-1].End, Subhosts: subs}
	if cpus := s.f.img.CPUs(); len(cpus) > 0 && cpus[0].HasControl {
		info.CR3, info.CR4 = cpus[0].CR3, cpus[0].CR4
	}
	srv, err := vmsock.NewServer(vmsock.ServerConfig{Backend: vmsock.RuntimeBackend{Runtime: s.rt, VM: info}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}
