//go:build linux

package fabric_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/fabric/fabrictest"
)

// fakeVM is a split-memory VM without vCPUs: guest RAM in a memfd, a
// location map, and sub-hosts served by MemTransports. Its moves follow the
// runtime's order (mark moving, copy, publish, punch / fill, publish), so a
// reader racing them sees what it would see against the real runtime.
type fakeVM struct {
	t     testing.TB
	ram   *os.File // read-write, the runtime's
	ro    *os.File // read-only reopen, the reader's
	size  uint64
	locs  *fabric.LocationMap
	subs  []*fabrictest.MemTransport
	trs   map[uint8]fabric.Transport
	mu    sync.Mutex // one move at a time
	free  [][]uint64 // free slots per sub-host, used LIFO
	moves int
}

func newFakeVM(t testing.TB, content []byte, nsub int, slots uint64) *fakeVM {
	t.Helper()
	pages := (uint64(len(content)) + fabric.PageSize - 1) / fabric.PageSize
	fd, err := unix.MemfdCreate("fakevm-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	ram := os.NewFile(uintptr(fd), "fakevm-ram")
	t.Cleanup(func() { ram.Close() })
	if err := ram.Truncate(int64(pages * fabric.PageSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := ram.WriteAt(content, 0); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	locs, err := fabric.CreateLocationMap(pages)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { locs.Close() })
	vm := &fakeVM{t: t, ram: ram, ro: ro, size: uint64(len(content)), locs: locs, trs: map[uint8]fabric.Transport{}}
	for s := range nsub {
		tr := fabrictest.NewMemTransport(slots, 0)
		vm.subs = append(vm.subs, tr)
		vm.trs[uint8(s)] = tr
		free := make([]uint64, slots)
		for i := range free {
			free[i] = slots - 1 - uint64(i)
		}
		vm.free = append(vm.free, free)
	}
	return vm
}

func (vm *fakeVM) pages() uint64 { return vm.locs.Len() }

func (vm *fakeVM) memory(t testing.TB, cfg fabric.MemoryConfig) *fabric.Memory {
	t.Helper()
	cfg.RAM, cfg.Locations = vm.ro, vm.locs
	if cfg.Subhosts == nil {
		cfg.Subhosts = vm.trs
	}
	if cfg.Layout == nil {
		cfg.Layout = []fabric.PhysRange{{Start: 0, End: vm.size}}
	}
	m, err := fabric.NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// pageOut moves local frame g to a free slot of sub-host sub.
func (vm *fakeVM) pageOut(g fabric.GFN, sub uint8) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	w := vm.locs.Load(g)
	if w.State() != fabric.StateLocal {
		return fmt.Errorf("page out gfn %#x: %v", uint64(g), w)
	}
	free := vm.free[sub]
	if len(free) == 0 {
		return fmt.Errorf("page out gfn %#x: sub-host %d full", uint64(g), sub)
	}
	slot := free[len(free)-1]
	vm.free[sub] = free[:len(free)-1]
	mv, err := w.MovingTo(sub, slot)
	if err != nil {
		return err
	}
	if err := vm.locs.Store(g, mv); err != nil {
		return err
	}
	buf := make([]byte, fabric.PageSize)
	if _, err := unix.Pread(int(vm.ram.Fd()), buf, int64(g.Addr())); err != nil {
		return err
	}
	if err := vm.trs[sub].WriteSlots(context.Background(), []fabric.SlotIO{{Slot: slot, Buf: buf}}); err != nil {
		return err
	}
	rw, err := mv.ToRemote(sub, slot)
	if err != nil {
		return err
	}
	if err := vm.locs.Store(g, rw); err != nil {
		return err
	}
	vm.moves++
	return unix.Fallocate(int(vm.ram.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(g.Addr()), fabric.PageSize)
}

// pageIn moves remote frame g back to guest RAM, with content instead of
// the slot's when content is not nil (a page the guest rewrote).
func (vm *fakeVM) pageIn(g fabric.GFN, content []byte) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	w := vm.locs.Load(g)
	if w.State() != fabric.StateRemote {
		return fmt.Errorf("page in gfn %#x: %v: %w", uint64(g), w, errNotRemote)
	}
	mv := w.ToMoving()
	if err := vm.locs.Store(g, mv); err != nil {
		return err
	}
	buf := content
	if buf == nil {
		buf = make([]byte, fabric.PageSize)
		if err := vm.trs[w.SubHost()].ReadSlots(context.Background(), []fabric.SlotIO{{Slot: w.Slot(), Buf: buf}}); err != nil {
			return err
		}
	}
	if _, err := unix.Pwrite(int(vm.ram.Fd()), buf, int64(g.Addr())); err != nil {
		return err
	}
	if err := vm.locs.Store(g, mv.ToLocal()); err != nil {
		return err
	}
	vm.free[w.SubHost()] = append(vm.free[w.SubHost()], w.Slot())
	vm.moves++
	return nil
}

var errNotRemote = errors.New("not remote")

// MakeResident makes fakeVM an Exchanger: it pages the frames in.
func (vm *fakeVM) MakeResident(_ context.Context, gfns []fabric.GFN) []error {
	errs := make([]error, len(gfns))
	for i, g := range gfns {
		if err := vm.pageIn(g, nil); err != nil && !errors.Is(err, errNotRemote) {
			errs[i] = err
		}
	}
	return errs
}

// stBlocks is the memfd's allocated 512-byte blocks.
func (vm *fakeVM) stBlocks() int64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(vm.ram.Fd()), &st); err != nil {
		vm.t.Fatal(err)
	}
	return st.Blocks
}

// punch makes a hole at local frame g without telling the location map: a
// page the word calls local but guest RAM lacks.
func (vm *fakeVM) punch(g fabric.GFN) {
	if err := unix.Fallocate(int(vm.ram.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(g.Addr()), fabric.PageSize); err != nil {
		vm.t.Fatal(err)
	}
}

// stampPage fills page with a self-checking pattern for frame g, version v.
func stampPage(page []byte, g fabric.GFN, v uint64) {
	binary.LittleEndian.PutUint64(page[0:], uint64(g))
	binary.LittleEndian.PutUint64(page[8:], v)
	x := uint64(g)*0x9e3779b97f4a7c15 ^ v*0xbf58476d1ce4e5b9
	for i := 16; i < len(page); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(page[i:], x)
	}
}

// checkPage tells whether page is a whole, unmixed stamp of frame g.
func checkPage(page []byte, g fabric.GFN) error {
	if got := fabric.GFN(binary.LittleEndian.Uint64(page)); got != g {
		return fmt.Errorf("page of gfn %#x holds gfn %#x", uint64(g), uint64(got))
	}
	want := make([]byte, len(page))
	stampPage(want, g, binary.LittleEndian.Uint64(page[8:]))
	if string(want) != string(page) {
		return errors.New("page mixes versions")
	}
	return nil
}

// stampedContent is pages stamped version 0.
func stampedContent(pages int) []byte {
	c := make([]byte, pages*fabric.PageSize)
	for g := range pages {
		stampPage(c[g*fabric.PageSize:(g+1)*fabric.PageSize], fabric.GFN(g), 0)
	}
	return c
}
