//go:build linux

package fabric

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const locmapChildEnv = "VMEMTRANS_LOCMAP_CHILD_GFNS"

func TestMain(m *testing.M) {
	if n := os.Getenv(locmapChildEnv); n != "" {
		os.Exit(locmapChild(n))
	}
	os.Exit(m.Run())
}

func childWord(g uint64) Word {
	w, _ := RemoteWord(uint8(g), g, uint32(g))
	return w
}

// locmapChild maps the location map passed as fd 3, checks every word,
// then waits for the parent's next store to show up in its own mapping.
func locmapChild(gfns string) int {
	n, _ := strconv.ParseUint(gfns, 10, 64)
	v, err := OpenLocationMapReadOnly(3)
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	if v.Len() != n {
		fmt.Println("len", v.Len())
		return 1
	}
	for g := range n {
		if w := v.Load(GFN(g)); w != childWord(g) {
			fmt.Printf("gfn %d: %v\n", g, w)
			return 1
		}
	}
	fmt.Println("ok")
	deadline := time.Now().Add(10 * time.Second)
	for v.Load(0) != LocalWord(5) {
		if time.Now().After(deadline) {
			fmt.Println("store never seen")
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("seen")
	return 0
}

func newMap(t *testing.T, gfns uint64) *LocationMap {
	t.Helper()
	m, err := CreateLocationMap(gfns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestLocationMapStoreLoad(t *testing.T) {
	m := newMap(t, 1000)
	if m.Len() != 1000 {
		t.Fatalf("Len = %d", m.Len())
	}
	for g := range GFN(1000) {
		if w := m.Load(g); w != LocalWord(0) {
			t.Fatalf("fresh gfn %d is %v", g, w)
		}
	}
	for g := range uint64(1000) {
		if err := m.Store(GFN(g), childWord(g)); err != nil {
			t.Fatal(err)
		}
	}
	for g := range uint64(1000) {
		if w := m.Load(GFN(g)); w != childWord(g) {
			t.Fatalf("gfn %d: %v, want %v", g, w, childWord(g))
		}
	}
	if m.Load(1000) != InvalidWord || m.Load(^GFN(0)) != InvalidWord {
		t.Fatal("load beyond the map is not InvalidWord")
	}
	if err := m.Store(1000, LocalWord(1)); !errors.Is(err, ErrGFNRange) {
		t.Fatalf("store beyond the map: %v", err)
	}
	if err := m.Store(1, InvalidWord); !errors.Is(err, ErrBadLocation) {
		t.Fatalf("store of an invalid word: %v", err)
	}
	ok, err := m.CompareAndSwap(3, childWord(3), LocalWord(9))
	if err != nil || !ok || m.Load(3) != LocalWord(9) {
		t.Fatalf("CompareAndSwap: %v %v %v", ok, err, m.Load(3))
	}
	if ok, _ := m.CompareAndSwap(3, childWord(3), LocalWord(10)); ok {
		t.Fatal("CompareAndSwap succeeded against a stale word")
	}
	if _, err := CreateLocationMap(0); !errors.Is(err, ErrGFNRange) {
		t.Fatalf("empty map: %v", err)
	}
}

func TestLocationMapReadOnlyView(t *testing.T) {
	m := newMap(t, 4096)
	ro, err := m.ReadOnlyFile()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	v, err := OpenLocationMapReadOnly(int(ro.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Len() != 4096 {
		t.Fatalf("view Len = %d", v.Len())
	}
	if err := m.Store(77, childWord(77)); err != nil {
		t.Fatal(err)
	}
	if w := v.Load(77); w != childWord(77) {
		t.Fatalf("view sees %v after store of %v", w, childWord(77))
	}
	if v.Load(4096) != InvalidWord {
		t.Fatal("view load beyond the map is not InvalidWord")
	}
	// The read-only descriptor cannot be mapped writable, nor resized.
	if _, err := unix.Mmap(int(ro.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		t.Fatal("read-only location map fd mapped writable")
	}
	if err := unix.Ftruncate(int(m.File().Fd()), 8); err == nil {
		t.Fatal("location map could be shrunk under its readers")
	}
}

func TestLocationMapRejectsUnsealed(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "words")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(4096)
	if _, err := OpenLocationMapReadOnly(int(f.Fd())); !errors.Is(err, ErrBadLocation) {
		t.Fatalf("unsealed file: %v, want ErrBadLocation", err)
	}
	if _, err := OpenLocationMapReadOnly(-1); err == nil {
		t.Fatal("bad fd accepted")
	}
}

func TestLocationMapOtherProcess(t *testing.T) {
	const gfns = 5000
	m := newMap(t, gfns)
	for g := range uint64(gfns) {
		m.Store(GFN(g), childWord(g))
	}
	ro, err := m.ReadOnlyFile()
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), locmapChildEnv+"="+strconv.Itoa(gfns))
	cmd.ExtraFiles = []*os.File{ro}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ok" {
		t.Fatalf("child: %q", lines.Text())
	}
	if err := m.Store(0, LocalWord(5)); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() || lines.Text() != "seen" {
		t.Fatalf("child: %q", lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}
