package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Environment of the child process that writes pages and waits to be killed.
const (
	childDirEnv   = "VMEMTRANS_STORE_CHILD_DIR"
	childSlotsEnv = "VMEMTRANS_STORE_CHILD_SLOTS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild writes pattern pages into a region, tells the parent, and blocks
// until it is killed: whatever it wrote must outlive it.
func runChild(dir string) int {
	slots, err := strconv.ParseUint(os.Getenv(childSlotsEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, err := s.Region("killed-vm", slots)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for i := range slots {
		b, _ := r.Slot(i)
		fillPattern(b, "killed-vm", i)
	}
	// A package variable keeps the store reachable: were it garbage, the
	// finalizer of its lock file would close it and drop the lock.
	childStore = s
	fmt.Println("written")
	for {
		time.Sleep(time.Hour)
	}
}

var childStore *Store

func fillPattern(b []byte, vm string, slot uint64) {
	rng := rand.New(rand.NewPCG(slot, uint64(len(vm))))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	copy(b, fmt.Sprintf("%s/%d", vm, slot))
}

func pattern(vm string, slot uint64) []byte {
	b := make([]byte, fabric.PageSize)
	fillPattern(b, vm, slot)
	return b
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func TestWriteRead(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	r, err := s.Region("vm-1", 64)
	if err != nil {
		t.Fatal(err)
	}
	if r.VM() != "vm-1" || r.Slots() != 64 || len(r.Bytes()) != 64*fabric.PageSize {
		t.Fatalf("region vm=%q slots=%d bytes=%d", r.VM(), r.Slots(), len(r.Bytes()))
	}
	for i := range r.Slots() {
		b, err := r.Slot(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != fabric.PageSize || cap(b) != fabric.PageSize {
			t.Fatalf("slot %d len %d cap %d", i, len(b), cap(b))
		}
		if !bytes.Equal(b, make([]byte, fabric.PageSize)) {
			t.Fatalf("fresh slot %d not zero", i)
		}
		fillPattern(b, "vm-1", i)
	}
	for i := range r.Slots() {
		b, _ := r.Slot(i)
		if !bytes.Equal(b, pattern("vm-1", i)) {
			t.Fatalf("slot %d content differs", i)
		}
		off := i * fabric.PageSize
		if !bytes.Equal(r.Bytes()[off:off+fabric.PageSize], b) {
			t.Fatalf("Bytes and Slot disagree at slot %d", i)
		}
	}
	if uintptr(len(r.Bytes())) == 0 || addrOf(r.Bytes())%fabric.PageSize != 0 {
		t.Fatalf("mapping not page aligned")
	}
	same, err := s.Region("vm-1", 64)
	if err != nil || same != r {
		t.Fatalf("second Region call: %p %v, want the same region %p", same, err, r)
	}
}

func TestRestartKeepsPages(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for _, vm := range []string{"a", "b.2"} {
		r, err := s.Region(vm, 16)
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.Slots() {
			b, _ := r.Slot(i)
			fillPattern(b, vm, i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	if got := s.List(); !slices.Equal(got, []string{"a", "b.2"}) {
		t.Fatalf("List after restart = %v", got)
	}
	for _, vm := range []string{"a", "b.2"} {
		r, err := s.Lookup(vm)
		if err != nil {
			t.Fatal(err)
		}
		if r.Slots() != 16 {
			t.Fatalf("%s has %d slots after restart", vm, r.Slots())
		}
		for i := range r.Slots() {
			b, _ := r.Slot(i)
			if !bytes.Equal(b, pattern(vm, i)) {
				t.Fatalf("%s slot %d lost after restart", vm, i)
			}
		}
	}
}

func TestKilledAgentLosesNothing(t *testing.T) {
	dir := t.TempDir()
	const slots = 256
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childSlotsEnv+"="+strconv.Itoa(slots))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q (%v); stderr: %s", line, err, stderr.String())
	}
	// While the child lives it holds the directory.
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("Open while child holds the store: %v, want ErrLocked", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s := openStore(t, dir)
	defer s.Close()
	r, err := s.Lookup("killed-vm")
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(slots) {
		b, _ := r.Slot(i)
		if !bytes.Equal(b, pattern("killed-vm", i)) {
			t.Fatalf("slot %d lost when the agent was killed", i)
		}
	}
}

func TestFree(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	r, err := s.Region("vm", 32)
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.ResidentBytes != 0 || st.Slots != 32 || st.VM != "vm" {
		t.Fatalf("fresh region stats %+v, want no resident bytes", st)
	}
	for i := range r.Slots() {
		b, _ := r.Slot(i)
		fillPattern(b, "vm", i)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	full := r.Stats().ResidentBytes
	if full < 32*fabric.PageSize {
		t.Fatalf("resident %d after writing 32 slots", full)
	}
	freed := []uint64{3, 4, 5, 9, 31, 4}
	if err := r.Free(freed...); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats().ResidentBytes; got > full-5*fabric.PageSize {
		t.Fatalf("resident %d after freeing 5 slots, was %d", got, full)
	}
	for i := range r.Slots() {
		b, _ := r.Slot(i)
		want := pattern("vm", i)
		if slices.Contains(freed, i) {
			want = make([]byte, fabric.PageSize)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("slot %d after Free: wrong content (freed=%v)", i, slices.Contains(freed, i))
		}
	}
	// A bad list frees nothing.
	if err := r.Free(0, 32); !errors.Is(err, fabric.ErrSlotRange) {
		t.Fatalf("Free out of range: %v", err)
	}
	if b, _ := r.Slot(0); !bytes.Equal(b, pattern("vm", 0)) {
		t.Fatalf("slot 0 changed by a rejected Free")
	}
}

func TestBadVMIDs(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()
	long := string(bytes.Repeat([]byte("a"), 65))
	for _, vm := range []string{"", ".", "..", "../x", "a/b", "-a", ".hidden", "a b", "a\x00", long, "é"} {
		if _, err := s.Region(vm, 1); !errors.Is(err, ErrBadVMID) {
			t.Errorf("Region(%q): %v, want ErrBadVMID", vm, err)
		}
		if _, err := s.Lookup(vm); !errors.Is(err, ErrBadVMID) {
			t.Errorf("Lookup(%q): %v, want ErrBadVMID", vm, err)
		}
	}
	for _, vm := range []string{"a", "A0", "vm-1.2_x", long[:64]} {
		if _, err := s.Region(vm, 1); err != nil {
			t.Errorf("Region(%q): %v", vm, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range entries {
		if e.Name() == "x" {
			t.Fatalf("a bad id escaped the state directory")
		}
	}
}

func TestLookupAndSizes(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	if _, err := s.Lookup("nope"); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("Lookup of missing region: %v", err)
	}
	if _, err := s.Region("nope", 0); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("Region(slots=0) of missing region: %v", err)
	}
	if _, err := s.Region("big", MaxSlots+1); !errors.Is(err, ErrBadSize) {
		t.Fatalf("Region beyond MaxSlots: %v", err)
	}
	if _, err := s.Region("vm", 8); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Region("vm", 9); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("Region with other size: %v", err)
	}
	r, err := s.Region("vm", 0)
	if err != nil || r.Slots() != 8 {
		t.Fatalf("Region(slots=0) of existing: %v", err)
	}
	if len(s.List()) != 1 {
		t.Fatalf("List = %v", s.List())
	}
}

func TestOutOfRange(t *testing.T) {
	s := openStore(t, t.TempDir())
	r, err := s.Region("vm", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{4, 5, 1 << 40, ^uint64(0)} {
		if _, err := r.Slot(i); !errors.Is(err, fabric.ErrSlotRange) {
			t.Errorf("Slot(%d): %v, want ErrSlotRange", i, err)
		}
	}
	s.Close()
	if _, err := r.Slot(0); !errors.Is(err, fabric.ErrClosed) {
		t.Errorf("Slot after Close: %v, want ErrClosed", err)
	}
	if r.Bytes() != nil {
		t.Errorf("Bytes after Close is not nil")
	}
	if err := r.Sync(); !errors.Is(err, fabric.ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if _, err := s.Region("vm", 4); !errors.Is(err, fabric.ErrClosed) {
		t.Errorf("Region after Close: %v", err)
	}
}

func TestCorruptHeader(t *testing.T) {
	corruptions := map[string]func(dir string) error{
		"flipped byte": func(dir string) error {
			p := filepath.Join(dir, regionsName, "vm", metaName)
			b, _ := os.ReadFile(p)
			b[17] ^= 1
			return os.WriteFile(p, b, 0o600)
		},
		"truncated meta": func(dir string) error {
			return os.Truncate(filepath.Join(dir, regionsName, "vm", metaName), 10)
		},
		"short slots file": func(dir string) error {
			return os.Truncate(filepath.Join(dir, regionsName, "vm", slotsName), fabric.PageSize)
		},
		"missing slots file": func(dir string) error {
			return os.Remove(filepath.Join(dir, regionsName, "vm", slotsName))
		},
	}
	for name, corrupt := range corruptions {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			if _, err := s.Region("vm", 4); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := corrupt(dir); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir)
			defer s.Close()
			if _, err := s.Lookup("vm"); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Lookup of corrupt region: %v, want ErrCorrupt", err)
			}
			if _, err := s.Region("vm", 4); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Region must not recreate over a corrupt region: %v", err)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	r, _ := s.Region("vm", 2)
	b, _ := r.Slot(1)
	b[0] = 7
	if err := s.Remove("vm"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup("vm"); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("Lookup after Remove: %v", err)
	}
	if err := s.Remove("vm"); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("second Remove: %v", err)
	}
	r, err := s.Region("vm", 2)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := r.Slot(1); b[0] != 0 {
		t.Fatalf("recreated region kept old content")
	}
}

func TestConcurrentRegions(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	var wg sync.WaitGroup
	regions := make([]*Region, 8)
	for g := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Region("shared", 64)
			if err != nil {
				t.Error(err)
				return
			}
			regions[g] = r
			for i := uint64(g) * 8; i < uint64(g+1)*8; i++ {
				b, _ := r.Slot(i)
				fillPattern(b, "shared", i)
			}
		}()
	}
	wg.Wait()
	for _, r := range regions[1:] {
		if r != regions[0] {
			t.Fatalf("concurrent Region calls returned different regions")
		}
	}
	for i := range uint64(64) {
		b, _ := regions[0].Slot(i)
		if !bytes.Equal(b, pattern("shared", i)) {
			t.Fatalf("slot %d wrong", i)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(header{slots: 1}.marshal())
	f.Add(header{slots: MaxSlots}.marshal())
	f.Add([]byte{})
	f.Add(make([]byte, headerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		if h.slots == 0 || h.slots > MaxSlots || !bytes.Equal(h.marshal(), b) {
			t.Fatalf("accepted header %x does not round trip", b)
		}
	})
}

func FuzzValidVMID(f *testing.F) {
	for _, s := range []string{"vm-1", "..", "a/b", "", "A.b_c-d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, vm string) {
		if ValidVMID(vm) != nil {
			return
		}
		if filepath.Base(vm) != vm || vm == "." || vm == ".." || len(vm) > MaxVMIDLen {
			t.Fatalf("accepted unsafe vm id %q", vm)
		}
	})
}

func TestOneStorePerDirectory(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of one directory: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	openStore(t, dir).Close()
}

// TestStoreSlotsDiskUseIsWrittenPages: the page cache is built in huge
// pages for the mapping, but a slot never written takes no disk space and
// reads zeros.
func TestStoreSlotsDiskUseIsWrittenPages(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	r, err := s.Region("vm", 2048) // 8 MiB: four huge pages
	if err != nil {
		t.Fatal(err)
	}
	page := pattern("vm", 700)
	if err := r.StoreSlots(700, page); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats().ResidentBytes; got == 0 || got > 16*fabric.PageSize {
		t.Errorf("one written slot uses %d bytes of disk, want one page's worth", got)
	}
	for _, i := range []uint64{0, 511, 699, 701, 1023, 2047} {
		b, _ := r.Slot(i)
		if slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
			t.Errorf("slot %d never written reads non-zero bytes", i)
		}
	}
	if b, _ := r.Slot(700); string(b) != string(page) {
		t.Error("slot 700 reads other bytes than were stored")
	}
}
