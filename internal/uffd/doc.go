// Package uffd is a minimal userfaultfd binding without cgo: the handful of
// UFFDIO ioctls the split-memory runtime (kvmhost) and the SIGBUS view of
// fabric.Memory need, written by hand because golang.org/x/sys/unix only
// knows the syscall number.
//
// Contract:
//   - New creates a userfaultfd (O_CLOEXEC|O_NONBLOCK; /dev/userfaultfd when
//     the syscall is refused) and performs the one UFFDIO_API handshake with
//     the requested features. It never asks for UFFD_USER_MODE_ONLY unless
//     the caller passes UserModeOnly: faults raised inside syscalls must reach
//     the handler.
//   - Copy treats EEXIST (the page was installed meanwhile) as success, and
//     retries a partial copy (EAGAIN) until the whole source is placed.
//   - Read returns (0, nil) when no message is pending (the fd is
//     non-blocking); callers poll Fd() for readiness.
//   - Errors wrap ErrUnsupported when userfaultfd is absent or forbidden
//     (ENOSYS, EPERM, EACCES, the stub on other systems), otherwise the errno.
//
// A goroutine that touches a registered range blocks in the page fault while
// holding its P: touch registered memory only from dedicated locked OS
// threads and keep GOMAXPROCS above the number of such threads.
package uffd
