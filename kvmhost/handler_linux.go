//go:build linux

package kvmhost

import (
	"context"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/internal/uffd"
)

// handle serves userfaultfd messages on a dedicated locked OS thread until
// stopFd is signalled. Missing faults of one read are paged in as one
// batch; write-protect faults are held (by r.mu) until the eviction that
// fenced the page is done, then woken. A fault whose page-in failed is
// woken again after faultRetry, so its thread faults and tries again.
func (r *Runtime) handle() {
	defer r.handlerWG.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var msgs [64]uffd.Msg
	retry := map[uintptr]time.Time{}
	pfd := []unix.PollFd{{Fd: int32(r.uf.Fd()), Events: unix.POLLIN}, {Fd: int32(r.stopFd), Events: unix.POLLIN}}
	for {
		timeout := -1
		if len(retry) > 0 {
			timeout = int(faultRetry / time.Millisecond)
		}
		if _, err := unix.Poll(pfd, timeout); err != nil && err != unix.EINTR {
			r.log.Error().Err(err).Msg("fault handler poll failed")
			return
		}
		if pfd[1].Revents != 0 {
			return
		}
		n, err := r.uf.Read(msgs[:])
		if err != nil {
			r.log.Error().Err(err).Msg("fault handler read failed")
			return
		}
		if n > 0 {
			r.serve(msgs[:n], retry)
		}
		now := time.Now()
		for a, at := range retry {
			if now.After(at) {
				delete(retry, a)
				r.uf.Wake(a, fabric.PageSize)
			}
		}
	}
}

func (r *Runtime) serve(msgs []uffd.Msg, retry map[uintptr]time.Time) {
	var missing []fabric.GFN
	var wp []fabric.GFN
	for _, m := range msgs {
		if m.Event != uffd.EventPagefault {
			continue
		}
		g, ok := r.gfnOf(m.Addr)
		if !ok {
			continue
		}
		if m.Flags&uffd.FlagWP != 0 {
			wp = append(wp, g)
			continue
		}
		missing = append(missing, g)
	}
	r.c.wpFaults.Add(uint64(len(wp)))
	r.c.faults.Add(uint64(len(missing)))
	slices.Sort(missing)
	missing = slices.Compact(missing)

	r.mu.Lock()
	defer r.mu.Unlock()
	// Holding r.mu, no eviction is under way: every page fenced by one has
	// been unprotected (which woke its writers). A WP message seen now is a
	// duplicate or stale; a wake makes sure no writer is left waiting.
	for _, g := range wp {
		r.uf.Wake(r.addr(g), fabric.PageSize)
	}
	var in, zero []fabric.GFN
	for _, g := range missing {
		switch {
		case r.flags[g]&flagBacked == 0:
			// Not guest RAM (a layout hole): zeros, never kept.
			r.zeroFill(g)
		case r.flags[g]&flagResident != 0:
			r.uf.Wake(r.addr(g), fabric.PageSize) // duplicate message: already in
		case r.locs.Load(g).State() == fabric.StateLocal:
			zero = append(zero, g) // never written: it becomes a resident page of zeros
		default:
			in = append(in, g)
		}
	}
	if len(zero) > 0 {
		r.makeRoom(uint64(len(zero)))
		filled := uint64(0)
		for _, g := range zero {
			if r.zeroFill(g) {
				r.flags[g] |= flagResident | flagRef
				r.resident++
				filled++
			}
		}
		r.c.resident.Store(r.resident)
		r.grow.touched(r, filled)
	}
	if len(in) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), moveTimeout)
	errs, _ := r.pageIn(ctx, in)
	cancel()
	for i, err := range errs {
		if err != nil {
			r.log.Warn().Err(err).Uint64("gfn", uint64(in[i])).Msg("fault page-in failed; retrying")
			retry[r.addr(in[i])] = time.Now().Add(faultRetry)
		}
	}
}

// zeroFill installs a page of zeros at g, reporting whether it did.
func (r *Runtime) zeroFill(g fabric.GFN) bool {
	r.c.zeroFills.Add(1)
	if err := r.uf.ZeroPage(r.addr(g), fabric.PageSize); err != nil {
		r.log.Error().Err(err).Uint64("gfn", uint64(g)).Msg("zero fill failed")
		return false
	}
	return true
}

// Start runs the fault handler and the workload threads. It raises
// GOMAXPROCS so that vCPU threads blocked in faults (each holding a P) leave
// Ps for the handler and the transports.
func (r *Runtime) Start(ctx context.Context) error {
	var err error
	r.startOnce.Do(func() {
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			err = ErrClosed
			return
		}
		if want := r.wl.Threads + 4; runtime.GOMAXPROCS(0) < want {
			runtime.GOMAXPROCS(want)
		}
		if r.stopFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
			return
		}
		r.handlerWG.Add(1)
		go r.handle()
		r.startWorkload(ctx)
	})
	return err
}

// MakeResident pages the given frames in (self paging), evicting victims to
// stay under the limit; errs[i] is the result for gfns[i]. A request larger
// than the resident limit is served in parts, so its first frames may be
// out again by the time it returns.
func (r *Runtime) MakeResident(ctx context.Context, gfns []fabric.GFN) []error {
	errs := make([]error, len(gfns))
	r.c.exchReqs.Add(1)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		for i := range errs {
			errs[i] = ErrClosed
		}
		return errs
	}
	var ok []fabric.GFN
	for i, g := range gfns {
		if uint64(g) >= uint64(len(r.flags)) || r.flags[g]&flagBacked == 0 {
			errs[i] = errNotBacked(g)
			continue
		}
		ok = append(ok, g)
	}
	slices.Sort(ok)
	ok = slices.Compact(ok)
	perr, brought := r.pageIn(ctx, ok)
	r.mu.Unlock()
	r.c.exchPages.Add(uint64(brought))
	for i, g := range gfns {
		if errs[i] == nil {
			if k, found := slices.BinarySearch(ok, g); found {
				errs[i] = perr[k]
			}
		}
	}
	return errs
}
