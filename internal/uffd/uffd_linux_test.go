//go:build linux

package uffd

import (
	"bytes"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// region is a MAP_SHARED mapping of a fresh memfd, as the runtime's guest RAM.
type region struct {
	fd   int
	mem  []byte
	base uintptr
}

func newRegion(t *testing.T, pages int) *region {
	t.Helper()
	fd, err := unix.MemfdCreate("uffd-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	size := pages * PageSize
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem); unix.Close(fd) })
	return &region{fd: fd, mem: mem, base: uintptr(unsafe.Pointer(&mem[0]))}
}

func newFD(t *testing.T, features uint64) *FD {
	t.Helper()
	f, err := New(features)
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("userfaultfd unavailable (%v): run with sysctl vm.unprivileged_userfaultfd=1 or as root", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitMsg polls f until a page-fault message arrives.
func waitMsg(t *testing.T, f *FD) Msg {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var msgs [8]Msg
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		n, err := f.Read(msgs[:])
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return msgs[0]
		}
	}
	t.Fatal("no userfaultfd message within 5s")
	return Msg{}
}

// onLockedThread runs fn on a locked OS thread (the only kind that may touch
// a registered range) and returns a channel closed when it is done.
func onLockedThread(fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(done)
		fn()
	}()
	return done
}

func TestMissingFaultCopy(t *testing.T) {
	f := newFD(t, FeatureMissingShmem)
	r := newRegion(t, 4)
	if err := f.Register(r.base, uintptr(len(r.mem)), ModeMissing); err != nil {
		t.Fatal(err)
	}
	var got atomic.Uint64
	done := onLockedThread(func() {
		got.Store(*(*uint64)(unsafe.Pointer(&r.mem[2*PageSize+8])))
	})
	m := waitMsg(t, f)
	if m.Event != EventPagefault {
		t.Fatalf("event %#x, want page fault", m.Event)
	}
	page := m.Addr &^ (PageSize - 1)
	if page != uint64(r.base)+2*PageSize {
		t.Fatalf("fault at %#x, want page %#x", m.Addr, uint64(r.base)+2*PageSize)
	}
	if m.Flags&FlagWrite != 0 {
		t.Fatalf("read fault reported as write (flags %#x)", m.Flags)
	}
	src := bytes.Repeat([]byte{0xA5}, PageSize)
	if err := f.Copy(uintptr(page), src, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("faulting thread not woken by copy")
	}
	if got.Load() != 0xA5A5A5A5A5A5A5A5 {
		t.Fatalf("read %#x after copy", got.Load())
	}
	// A second copy to the same page is EEXIST, which is success.
	if err := f.Copy(uintptr(page), src, false); err != nil {
		t.Fatalf("copy over a present page: %v", err)
	}
	// The copy is in the file: pread sees it without touching the mapping.
	buf := make([]byte, PageSize)
	if _, err := unix.Pread(r.fd, buf, 2*PageSize); err != nil || !bytes.Equal(buf, src) {
		t.Fatalf("pread after copy: %v, equal=%v", err, bytes.Equal(buf, src))
	}
}

func TestZeroPage(t *testing.T) {
	f := newFD(t, FeatureMissingShmem)
	r := newRegion(t, 2)
	if err := f.Register(r.base, uintptr(len(r.mem)), ModeMissing); err != nil {
		t.Fatal(err)
	}
	if err := f.ZeroPage(r.base, 2*PageSize); err != nil {
		t.Fatal(err)
	}
	var sum atomic.Uint64
	<-onLockedThread(func() { // no fault: the pages are there
		for i := 0; i < len(r.mem); i += 512 {
			sum.Add(uint64(r.mem[i]))
		}
	})
	if sum.Load() != 0 {
		t.Fatal("zero page not zero")
	}
}

func TestWriteProtectFaultAndWake(t *testing.T) {
	f := newFD(t, FeatureMissingShmem|FeatureWPShmem)
	r := newRegion(t, 2)
	if err := f.Register(r.base, uintptr(len(r.mem)), ModeMissing|ModeWP); err != nil {
		t.Fatal(err)
	}
	if err := f.Copy(r.base, make([]byte, 2*PageSize), true); err != nil {
		t.Fatal(err)
	}
	p := (*uint64)(unsafe.Pointer(&r.mem[PageSize]))
	done := onLockedThread(func() { *p = 42 })
	m := waitMsg(t, f)
	if m.Flags&FlagWP == 0 || m.Flags&FlagWrite == 0 {
		t.Fatalf("flags %#x, want a write-protect write fault", m.Flags)
	}
	if m.Addr&^(PageSize-1) != uint64(r.base)+PageSize {
		t.Fatalf("wp fault at %#x, want page %#x", m.Addr, uint64(r.base)+PageSize)
	}
	select {
	case <-done:
		t.Fatal("writer got through a write-protected page")
	case <-time.After(20 * time.Millisecond):
	}
	// A bare wake does not lift protection: the writer faults again.
	if err := f.Wake(r.base+PageSize, PageSize); err != nil {
		t.Fatal(err)
	}
	m = waitMsg(t, f)
	if m.Flags&FlagWP == 0 {
		t.Fatalf("after wake: flags %#x, want another wp fault", m.Flags)
	}
	if err := f.WriteProtect(r.base+PageSize, PageSize, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer not released by unprotect")
	}
	buf := make([]byte, 8)
	if _, err := unix.Pread(r.fd, buf, PageSize); err != nil || buf[0] != 42 {
		t.Fatalf("write not in the file: %v %v", err, buf)
	}
}

func TestPunchedPageFaultsAgain(t *testing.T) {
	f := newFD(t, FeatureMissingShmem|FeatureWPShmem)
	r := newRegion(t, 1)
	if err := f.Register(r.base, PageSize, ModeMissing|ModeWP); err != nil {
		t.Fatal(err)
	}
	if err := f.Copy(r.base, bytes.Repeat([]byte{1}, PageSize), false); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(r.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, PageSize); err != nil {
		t.Fatal(err)
	}
	var got atomic.Uint32
	done := onLockedThread(func() { got.Store(uint32(r.mem[100])) })
	m := waitMsg(t, f)
	if m.Flags&FlagWP != 0 {
		t.Fatalf("flags %#x, want a missing fault", m.Flags)
	}
	if err := f.Copy(r.base, bytes.Repeat([]byte{7}, PageSize), false); err != nil {
		t.Fatal(err)
	}
	<-done
	if got.Load() != 7 {
		t.Fatalf("read %d after re-copy", got.Load())
	}
}

func TestBadCopyLength(t *testing.T) {
	f := newFD(t, FeatureMissingShmem)
	if err := f.Copy(0x1000, make([]byte, 100), false); err == nil {
		t.Fatal("copy of a partial page accepted")
	}
}
