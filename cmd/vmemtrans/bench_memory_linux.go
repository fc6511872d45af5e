//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/bench"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// benchVM is a split VM's memory without a VM: the first local pages of a
// RAM memfd are resident, the remote pages after them are holes whose
// location words name the sub-host slots that hold them.
type benchVM struct {
	ram, ro  *os.File
	locs     *fabric.LocationMap
	tr       fabric.Transport
	local    uint64
	remote   uint64
	bare     []byte // a plain shared mapping of the resident pages
	proxy    *fabric.Memory
	adaptive *fabric.Memory
	ranges   []physmem.Range
	ios      []fabric.SlotIO
}

func newBenchVM(ctx context.Context, tr fabric.Transport, local, remote uint64) (vm *benchVM, err error) {
	vm = &benchVM{tr: tr, local: local, remote: remote}
	defer func() {
		if err != nil {
			vm.close()
		}
	}()
	total := local + remote
	fd, err := unix.MemfdCreate("vmemtrans-bench-ram", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("bench ram: %w", err)
	}
	vm.ram = os.NewFile(uintptr(fd), "vmemtrans-bench-ram")
	if err := vm.ram.Truncate(int64(total * fabric.PageSize)); err != nil {
		return nil, fmt.Errorf("bench ram: %w", err)
	}
	page := make([]byte, fabric.PageSize)
	for g := range local {
		bench.FillPattern(page, g)
		if _, err := vm.ram.WriteAt(page, int64(g*fabric.PageSize)); err != nil {
			return nil, fmt.Errorf("bench ram: %w", err)
		}
	}
	if vm.locs, err = fabric.CreateLocationMap(total); err != nil {
		return nil, err
	}
	const chunk = 1024
	for base := uint64(0); base < remote; base += chunk {
		b := make([]fabric.SlotIO, min(chunk, remote-base))
		for i := range b {
			slot := base + uint64(i)
			b[i] = fabric.SlotIO{Slot: slot, Buf: make([]byte, fabric.PageSize)}
			bench.FillPattern(b[i].Buf, local+slot)
		}
		if err := tr.WriteSlots(ctx, b); err != nil {
			return nil, fmt.Errorf("bench sub-host fill: %w", err)
		}
		for i := range b {
			w, err := fabric.RemoteWord(0, b[i].Slot, 1)
			if err != nil {
				return nil, err
			}
			if err := vm.locs.Store(fabric.GFN(local+b[i].Slot), w); err != nil {
				return nil, err
			}
		}
	}
	if vm.ro, err = os.Open(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil {
		return nil, fmt.Errorf("bench ram read-only: %w", err)
	}
	cfg := fabric.MemoryConfig{
		RAM: vm.ro, Locations: vm.locs, Layout: []fabric.PhysRange{{Start: 0, End: total * fabric.PageSize}},
		Subhosts: map[uint8]fabric.Transport{0: tr}, Method: fabric.MethodProxy,
	}
	if vm.proxy, err = fabric.NewMemory(cfg); err != nil {
		return nil, err
	}
	cfg.Method, cfg.CacheBytes = fabric.MethodAdaptive, int64(remote*fabric.PageSize)
	if vm.adaptive, err = fabric.NewMemory(cfg); err != nil {
		return nil, err
	}
	// Only the resident pages: a read through an unregistered mapping of a
	// hole would allocate it.
	if vm.bare, err = unix.Mmap(int(vm.ro.Fd()), 0, int(local*fabric.PageSize), unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("bench bare mapping: %w", err)
	}
	if err := vm.verify(); err != nil {
		return nil, err
	}
	return vm, nil
}

// verify reads every page through both Memories (mapping every resident
// page in the view, filling the adaptive cache) and through the bare
// mapping, and checks the content: a benchmark of wrong data is worthless.
func (vm *benchVM) verify() error {
	total := vm.local + vm.remote
	buf := make([]byte, total*fabric.PageSize)
	want := make([]byte, fabric.PageSize)
	for _, m := range []*fabric.Memory{vm.proxy, vm.adaptive} {
		clear(buf)
		if err := m.ReadPhys([]physmem.Range{{Addr: 0, Buf: buf}}); err != nil {
			return fmt.Errorf("bench verify (%v): %w", m.Method(), err)
		}
		for g := range total {
			bench.FillPattern(want, g)
			if !bytes.Equal(buf[g*fabric.PageSize:(g+1)*fabric.PageSize], want) {
				return fmt.Errorf("bench verify (%v): page %d reads different bytes", m.Method(), g)
			}
		}
	}
	if !bytes.Equal(vm.bare, buf[:len(vm.bare)]) {
		return errors.New("bench verify: the bare mapping reads different bytes")
	}
	return nil
}

// warmAdaptive reads every remote page through the adaptive Memory in
// batches of 256 pages.
func (vm *benchVM) warmAdaptive() error {
	buf := make([]byte, 256*fabric.PageSize)
	for base := vm.local; base < vm.local+vm.remote; base += 256 {
		n := min(256, vm.local+vm.remote-base)
		if err := vm.adaptive.ReadPhys([]physmem.Range{{Addr: base * fabric.PageSize, Buf: buf[:n*fabric.PageSize]}}); err != nil {
			return fmt.Errorf("adaptive warm-up: %w", err)
		}
	}
	return nil
}

func (vm *benchVM) batch(n int) []physmem.Range {
	if len(vm.ranges) != n {
		vm.ranges = newBatchRanges(n)
	}
	return vm.ranges
}

func (vm *benchVM) readMemory(m *fabric.Memory, rng *rand.Rand, base, n uint64, batch int) error {
	rs := vm.batch(batch)
	for i := range rs {
		rs[i].Addr = (base + rng.Uint64N(n)) * fabric.PageSize
	}
	return m.ReadPhys(rs)
}

func (vm *benchVM) readBare(rng *rand.Rand, batch int) {
	rs := vm.batch(batch)
	for i := range rs {
		rs[i].Addr = rng.Uint64N(vm.local) * fabric.PageSize
	}
	for _, r := range rs {
		copy(r.Buf, vm.bare[r.Addr:r.Addr+fabric.PageSize])
	}
}

func (vm *benchVM) readTransport(ctx context.Context, rng *rand.Rand, batch int) error {
	if len(vm.ios) != batch {
		vm.ios = make([]fabric.SlotIO, batch)
		for i := range vm.ios {
			vm.ios[i].Buf = make([]byte, fabric.PageSize)
		}
	}
	for i := range vm.ios {
		vm.ios[i].Slot = rng.Uint64N(vm.remote)
	}
	return vm.tr.ReadSlots(ctx, vm.ios)
}

func (vm *benchVM) close() {
	if vm.bare != nil {
		unix.Munmap(vm.bare)
	}
	for _, m := range []*fabric.Memory{vm.proxy, vm.adaptive} {
		if m != nil {
			m.Close()
		}
	}
	if vm.locs != nil {
		vm.locs.Close()
	}
	for _, f := range []*os.File{vm.ro, vm.ram} {
		if f != nil {
			f.Close()
		}
	}
}

// threadCPU is the CPU time of the calling OS thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
