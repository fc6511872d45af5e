//go:build linux

package kvmhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
)

// Per-GFN flags, guarded by Runtime.mu.
const (
	flagBacked   = 1 << 0 // the layout backs the frame
	flagResident = 1 << 1 // the frame's content is in the RAM memfd
	flagRef      = 1 << 2 // used since the clock hand last passed (second chance)
)

// Runtime is one split-memory VM: its guest RAM memfd registered with
// userfaultfd, its location map, the sub-hosts holding its remote pages,
// the fault handler and the synthetic workload.
type Runtime struct {
	log    zerolog.Logger
	layout []fabric.PhysRange
	wl     WorkloadConfig

	ram  *os.File // the guest RAM memfd, offset == guest-physical address
	mem  []byte   // MAP_SHARED mapping of ram, registered with uf; only locked runtime threads touch it
	base uintptr  // where the registered mapping starts (in this process, or in a VMM's: see NewForSpace)
	size uintptr  // its length
	uf   *uffd.FD
	locs *fabric.LocationMap
	subs []fabric.Transport

	mu       sync.Mutex // serialises every move of a page, and the fields below
	slots    []*slotAlloc
	flags    []uint8
	accessed []uint32     // per GFN, set by vCPUs on access, cleared by the clock
	backed   []fabric.GFN // backed frames in address order: the clock's circle
	hand     int
	resident uint64
	limit    uint64
	empty    uint64      // pages of zeros at load, held nowhere
	grow     limitGrowth // a VMM guest's limit follows the pages it has touched
	nextSub  int
	closed   bool
	inBuf    []byte // page-in scratch
	outBuf   []byte // page-out scratch

	c counters

	startOnce sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	stopFd    int // eventfd that wakes the handler's poll
	handlerWG sync.WaitGroup
	workWG    sync.WaitGroup
	closeOnce sync.Once
}

type counters struct {
	faults, wpFaults, pageIns, pageOuts, exchReqs, exchPages, zeroFills atomic.Uint64
	wlReads, wlWrites, pageInErrs, pageOutErrs, resident, remote        atomic.Uint64
	limit                                                               atomic.Uint64
}

// New creates the VM's guest RAM and location map, copies the image in and
// split-migrates it: ResidentPct of the backed pages stay in the RAM memfd,
// the rest go to sub-host slots, spread over the sub-hosts, and the location
// words say where each page is.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	gfns, err := cfg.check()
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		log:      cfg.Log,
		layout:   append([]fabric.PhysRange(nil), cfg.Layout...),
		wl:       cfg.Workload,
		subs:     cfg.Subhosts,
		flags:    make([]uint8, gfns),
		accessed: make([]uint32, gfns),
		stop:     make(chan struct{}),
		stopFd:   -1,
	}
	for _, t := range cfg.Subhosts {
		r.slots = append(r.slots, newSlotAlloc(t.Slots()))
	}
	var backed uint64
	for _, rg := range r.layout {
		backed += uint64(fabric.GFNOf(rg.End) - fabric.GFNOf(rg.Start))
	}
	r.backed = make([]fabric.GFN, 0, backed) // sized once: growing it would leave copies for the GC on large guests
	for _, rg := range r.layout {
		for g := fabric.GFNOf(rg.Start); g < fabric.GFNOf(rg.End); g++ {
			r.flags[g] = flagBacked
			r.backed = append(r.backed, g)
		}
	}
	if err := r.createRAM(gfns); err != nil {
		r.release()
		return nil, err
	}
	if err := r.load(ctx, cfg); err != nil {
		r.release()
		return nil, err
	}
	r.c.limit.Store(r.limit)
	if err := r.register(); err != nil {
		r.release()
		return nil, err
	}
	r.log.Info().Int("backed_pages", len(r.backed)).Uint64("empty", r.empty).Uint64("resident", r.resident).
		Uint64("remote", r.c.remote.Load()).Int("subhosts", len(r.subs)).Msg("guest memory split")
	return r, nil
}

func (r *Runtime) createRAM(gfns uint64) error {
	fd, err := unix.MemfdCreate("vmemtrans-ram", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("create guest ram: memfd: %w", err)
	}
	r.ram = os.NewFile(uintptr(fd), "vmemtrans-ram")
	if err := unix.Ftruncate(fd, int64(gfns*fabric.PageSize)); err != nil {
		return fmt.Errorf("create guest ram: size %d pages: %w", gfns, err)
	}
	if r.locs, err = fabric.CreateLocationMap(gfns); err != nil {
		return err
	}
	return nil
}

// register maps the RAM and hands it to userfaultfd; from here on only the
// runtime's locked threads touch the mapping.
func (r *Runtime) register() error {
	size := len(r.flags) * fabric.PageSize
	mem, err := unix.Mmap(int(r.ram.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map guest ram: %w", err)
	}
	r.mem, r.base, r.size = mem, uintptr(unsafe.Pointer(unsafe.SliceData(mem))), uintptr(size)
	if r.uf, err = uffd.New(uffd.FeatureMissingShmem | uffd.FeatureWPShmem); err != nil {
		return fmt.Errorf("guest ram: %w", err)
	}
	if err := r.uf.Register(r.base, uintptr(size), uffd.ModeMissing|uffd.ModeWP); err != nil {
		return fmt.Errorf("guest ram: %w", err)
	}
	return nil
}

// addr is the address of g in the registered mapping.
func (r *Runtime) addr(g fabric.GFN) uintptr { return r.base + uintptr(g)<<fabric.PageShift }

// gfnOf is the frame of an address in the mapping, or false.
func (r *Runtime) gfnOf(a uint64) (fabric.GFN, bool) {
	if a < uint64(r.base) || a >= uint64(r.base)+uint64(r.size) {
		return 0, false
	}
	return fabric.GFN((a - uint64(r.base)) >> fabric.PageShift), true
}

// RAMFile reopens the RAM memfd read-only, for IDS views.
func (r *Runtime) RAMFile() (*os.File, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", r.ram.Fd()), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen guest ram read-only: %w", err)
	}
	return f, nil
}

// LocationMapFile is a read-only descriptor of the location map.
func (r *Runtime) LocationMapFile() (*os.File, error) { return r.locs.ReadOnlyFile() }

// Locations is the location map, for in-process readers.
func (r *Runtime) Locations() fabric.Locations { return r.locs }

// Layout is the backed guest-physical ranges.
func (r *Runtime) Layout() []fabric.PhysRange { return append([]fabric.PhysRange(nil), r.layout...) }

// Subhosts are the sub-host transports, indexed by sub-host id.
func (r *Runtime) Subhosts() []fabric.Transport { return r.subs }

// Stats is a snapshot of the counters.
func (r *Runtime) Stats() Stats {
	return Stats{
		Faults: r.c.faults.Load(), WPFaults: r.c.wpFaults.Load(), PageIns: r.c.pageIns.Load(),
		PageOuts: r.c.pageOuts.Load(), ExchangeRequests: r.c.exchReqs.Load(), ExchangedPages: r.c.exchPages.Load(),
		ZeroFills: r.c.zeroFills.Load(), ResidentPages: r.c.resident.Load(), ResidentLimit: r.c.limit.Load(),
		BackedPages: uint64(len(r.backed)), EmptyPages: r.empty, RemotePages: r.c.remote.Load(), WorkloadReads: r.c.wlReads.Load(),
		WorkloadWrites: r.c.wlWrites.Load(), PageInErrors: r.c.pageInErrs.Load(), PageOutErrors: r.c.pageOutErrs.Load(),
	}
}

// Close stops the workload and the fault handler and releases the RAM and
// the map (readers keep their own mappings and descriptors). The sub-host
// transports stay the caller's.
func (r *Runtime) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.stopWorkload() // the handler still serves faults the workload is blocked in
		if r.stopFd >= 0 {
			unix.Write(r.stopFd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		}
		r.handlerWG.Wait()
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		err = r.release()
	})
	return err
}

// stopWorkload stops the vCPU threads and waits for them.
func (r *Runtime) stopWorkload() {
	r.stopOnce.Do(func() { close(r.stop) })
	r.workWG.Wait()
}

func (r *Runtime) release() error {
	var errs []error
	if r.uf != nil {
		errs = append(errs, r.uf.Close())
	}
	if r.mem != nil {
		errs = append(errs, unix.Munmap(r.mem))
		r.mem = nil
	}
	if r.ram != nil {
		errs = append(errs, r.ram.Close())
	}
	if r.locs != nil {
		errs = append(errs, r.locs.Close())
	}
	if r.stopFd >= 0 {
		errs = append(errs, unix.Close(r.stopFd))
	}
	return errors.Join(errs...)
}
