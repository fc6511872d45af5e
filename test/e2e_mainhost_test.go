package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/control/controltest"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
	"github.com/vmemtrans/vmemtrans/introspect/image/imagetest"
	"github.com/vmemtrans/vmemtrans/kvmhost/vmsock"
	"github.com/vmemtrans/vmemtrans/tcpfallback"
)

// mainhostPage is the synthetic image's content of gfn.
func mainhostPage(g fabric.GFN) []byte {
	p := make([]byte, fabric.PageSize)
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], uint64(g)*0x9e3779b97f4a7c15+uint64(i))
	}
	return p
}

// A synthetic two-range guest: 64 pages at 0, a hole, 192 pages at 1 MiB.
var mainhostLayout = []fabric.PhysRange{{Start: 0, End: 64 * fabric.PageSize}, {Start: 1 << 20, End: 1<<20 + 192*fabric.PageSize}}

const mainhostCR3, mainhostCR4 = 0x1944000, 0x3506f0

func writeMainhostImage(t *testing.T) string {
	t.Helper()
	var segs []imagetest.DumpSegment
	for _, r := range mainhostLayout {
		var data []byte
		for g := fabric.GFNOf(r.Start); g < fabric.GFNOf(r.End); g++ {
			data = append(data, mainhostPage(g)...)
		}
		segs = append(segs, imagetest.DumpSegment{Phys: r.Start, Data: data})
	}
	path := filepath.Join(t.TempDir(), "guest.elf")
	dump := imagetest.BuildDump(imagetest.DumpSpec{Segments: segs, CPUs: []imagetest.DumpCPU{{CR3: mainhostCR3, CR4: mainhostCR4}}})
	if err := os.WriteFile(path, dump, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIntegrationMainhost splits a synthetic image over two in-process
// sub-hosts with `vmemtrans mainhost`, then checks, as an IDS would, what
// its control socket hands out: the info, the descriptors (every page of
// the image is where its location word says, with the image's content),
// self paging, the metrics, and the socket's removal on SIGTERM.
func TestIntegrationMainhost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the vmemtrans binary; run without -short")
	}
	if f, err := uffd.New(0); err != nil {
		t.Skipf("userfaultfd unavailable (%v): run as root or set sysctl vm.unprivileged_userfaultfd=1", err)
	} else {
		f.Close()
	}
	bin := buildVmemtrans(t)
	const vm = "vm-main"
	key := bytes.Repeat([]byte{0x5a}, 32)
	keys, err := control.NewKeyring(map[string][]byte{vm: key})
	if err != nil {
		t.Fatal(err)
	}
	subs := []*controltest.Subhost{controltest.Start(t, keys), controltest.Start(t, keys)}
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte(vm+" "+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "vm.sock")
	var info struct {
		Socket        string   `json:"socket"`
		Metrics       string   `json:"metrics"`
		BackedPages   uint64   `json:"backed_pages"`
		ResidentPages uint64   `json:"resident_pages"`
		RemotePages   uint64   `json:"remote_pages"`
		Transports    []string `json:"transports"`
	}
	proc := startDaemon(t, bin, &info, "mainhost", "--image", writeMainhostImage(t),
		"--subhost", subs[0].Addr, "--subhost", subs[1].Addr, "--psk-file", psk, "--vm", vm,
		"--resident", "25", "--socket", sock, "--metrics", "127.0.0.1:0", "--rdma", "off",
		"--workload-threads", "1", "--workload-hot", "16", "--json")
	const backed = 256
	if info.Socket != sock || info.BackedPages != backed || info.ResidentPages+info.RemotePages != backed ||
		info.ResidentPages > backed/4+1 || !reflect.DeepEqual(info.Transports, []string{"tcp", "tcp"}) {
		t.Fatalf("mainhost reports %+v", info)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v: want mode 0600", fi, err)
	}

	c, err := vmsock.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	vi := c.Info()
	want := vmsock.VMInfo{VM: vm, Layout: mainhostLayout, CR3: mainhostCR3, CR4: mainhostCR4, RAMSize: mainhostLayout[1].End,
		Subhosts: []vmsock.Subhost{{ID: 0, Addr: subs[0].Addr, VM: vm, Key: key}, {ID: 1, Addr: subs[1].Addr, VM: vm, Key: key}}}
	if !reflect.DeepEqual(vi, want) {
		t.Fatalf("info\n got %+v\nwant %+v", vi, want)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ram, lmf, err := c.Files(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	defer lmf.Close()
	view, err := fabric.OpenLocationMapReadOnly(int(lmf.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	trs := make([]fabric.Transport, len(vi.Subhosts))
	for i, s := range vi.Subhosts {
		if trs[i], err = tcpfallback.Dial(ctx, s.Addr, s.VM, s.Key, tcpfallback.Options{}); err != nil {
			t.Fatal(err)
		}
		defer trs[i].Close()
	}
	var remote []fabric.GFN
	for _, r := range vi.Layout {
		for g := fabric.GFNOf(r.Start); g < fabric.GFNOf(r.End); g++ {
			got, w := readThroughSocket(t, ctx, g, view, ram, trs)
			if !bytes.Equal(got, mainhostPage(g)) {
				t.Fatalf("gfn %#x (%v) differs from the image", uint64(g), w)
			}
			if w.State() == fabric.StateRemote && len(remote) < 8 {
				remote = append(remote, g)
			}
		}
	}
	if len(remote) == 0 {
		t.Fatal("no page is remote")
	}

	// Self paging: the remote pages come in, and read locally.
	for i, err := range c.MakeResident(ctx, remote) {
		if err != nil {
			t.Fatalf("make gfn %#x resident: %v", uint64(remote[i]), err)
		}
	}
	if errs := c.MakeResident(ctx, []fabric.GFN{fabric.GFNOf(512 << 10)}); errs[0] == nil {
		t.Fatal("a GFN in the layout's hole was made resident")
	}
	page := make([]byte, fabric.PageSize)
	for _, g := range remote {
		w := view.Load(g)
		if _, err := ram.ReadAt(page, int64(g.Addr())); err != nil {
			t.Fatal(err)
		}
		if w != view.Load(g) {
			continue // the workload moved it again meanwhile
		}
		if w.State() == fabric.StateLocal && !bytes.Equal(page, mainhostPage(g)) {
			t.Fatalf("gfn %#x paged in with other content", uint64(g))
		}
	}

	m := scrape(t, info.Metrics)
	if v := metricValue(t, m, "vmemtrans_runtime_backed_pages"); v != backed {
		t.Errorf("backed_pages %v, want %d", v, backed)
	}
	if v := metricValue(t, m, "vmemtrans_runtime_exchange_requests_total"); v < 1 {
		t.Errorf("exchange_requests_total %v after a self-paging request", v)
	}
	if v := metricValue(t, m, "vmemtrans_vmsock_connections_total"); v != 1 {
		t.Errorf("socket_connections_total %v, want 1", v)
	}

	// A second runtime on the same socket fails at once and leaves it alone.
	out, err := exec.Command(bin, "mainhost", "--image", writeMainhostImage(t), "--resident", "100", "--socket", sock).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already serves") {
		t.Fatalf("second mainhost on a live socket: %v\n%s", err, out)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the second runtime removed the live socket: %v", err)
	}

	c.Close()
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mainhost exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mainhost did not exit on SIGTERM")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// readThroughSocket reads gfn as an IDS does with what the socket handed
// out: load the word, read the RAM descriptor or the sub-host slot, reload
// the word, retry if it changed.
func readThroughSocket(t *testing.T, ctx context.Context, g fabric.GFN, view *fabric.LocationView, ram *os.File, trs []fabric.Transport) ([]byte, fabric.Word) {
	t.Helper()
	buf := make([]byte, fabric.PageSize)
	for range 1000 {
		w := view.Load(g)
		switch w.State() {
		case fabric.StateLocal:
			if _, err := ram.ReadAt(buf, int64(g.Addr())); err != nil {
				t.Fatal(err)
			}
		case fabric.StateRemote:
			if int(w.SubHost()) >= len(trs) {
				t.Fatalf("gfn %#x on sub-host %d of %d", uint64(g), w.SubHost(), len(trs))
			}
			b := []fabric.SlotIO{{Slot: w.Slot(), Buf: buf}}
			if err := trs[w.SubHost()].ReadSlots(ctx, b); err != nil {
				t.Fatal(err)
			}
		default:
			time.Sleep(time.Millisecond)
			continue
		}
		if view.Load(g) == w {
			return buf, w
		}
	}
	t.Fatalf("gfn %#x never held still", uint64(g))
	return nil, 0
}

// TestIntegrationMainhostFixture splits the real attack guest with
// `vmemtrans mainhost` (25% resident, a writing workload) and runs IDS
// commands on it through the control socket with each method: every answer,
// the rootkit's hidden task included, equals the unsplit image's.
func TestIntegrationMainhostFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("splits a 256 MiB guest and runs the IDS over it; run without -short")
	}
	img := fixturePath("linux-6.1-attack", "memory.elf.zst")
	if _, err := os.Stat(img); err != nil {
		t.Skipf("fixture not present (%v): run make fixtures", err)
	}
	if f, err := uffd.New(0); err != nil {
		t.Skipf("userfaultfd unavailable (%v): run as root or set sysctl vm.unprivileged_userfaultfd=1", err)
	} else {
		f.Close()
	}
	bin := buildVmemtrans(t)
	const vm = "vm-attack"
	key := bytes.Repeat([]byte{0x6b}, 32)
	keys, err := control.NewKeyring(map[string][]byte{vm: key})
	if err != nil {
		t.Fatal(err)
	}
	subs := []*controltest.Subhost{controltest.Start(t, keys), controltest.Start(t, keys)}
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte(vm+" "+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "vm.sock")
	var info struct {
		RemotePages uint64 `json:"remote_pages"`
	}
	startDaemon(t, bin, &info, "mainhost", "--image", img, "--subhost", subs[0].Addr, "--subhost", subs[1].Addr,
		"--psk-file", psk, "--vm", vm, "--resident", "25", "--socket", sock, "--rdma", "off",
		"--workload-threads", "2", "--workload-hot", "2000", "--workload-write-ratio", "0.3", "--json")
	if info.RemotePages == 0 {
		t.Fatal("nothing was split off")
	}

	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code == 1 {
			t.Fatalf("%v could not check: %s", args, stderr.String())
		}
		return stdout.String(), code
	}
	for _, ids := range [][]string{{"ps", "--json"}, {"check", "hidden-tasks", "--json"}} {
		want, wantCode := run(append(ids, "--image", img)...)
		for _, method := range []string{"proxy", "self", "adaptive"} {
			got, code := run(append(ids, "--vm", sock, "--method", method)...)
			if got != want || code != wantCode {
				t.Errorf("%v --method %s: exit %d, output differs from the image's (exit %d):\n got %.300s\nwant %.300s",
					ids, method, code, wantCode, got, want)
			}
		}
		if ids[0] == "check" && wantCode != 2 {
			t.Errorf("hidden-tasks on the attack guest exits %d, want 2 (found)", wantCode)
		}
	}
}
