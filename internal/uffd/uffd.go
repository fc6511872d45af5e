package uffd

import "errors"

// Features of UFFDIO_API (the ones this project uses).
const (
	// FeaturePagefaultFlagWP reports write-protect faults with FlagWP.
	FeaturePagefaultFlagWP = 1 << 0
	// FeatureMissingShmem allows MISSING registration of shmem/memfd mappings.
	FeatureMissingShmem = 1 << 5
	// FeatureSigbus raises SIGBUS in the faulting thread instead of queueing a message.
	FeatureSigbus = 1 << 7
	// FeatureThreadID fills Msg.TID with the faulting thread.
	FeatureThreadID = 1 << 8
	// FeatureWPShmem allows write-protect registration of shmem/hugetlbfs
	// (UFFD_FEATURE_WP_HUGETLBFS_SHMEM).
	FeatureWPShmem = 1 << 12
)

// Registration modes.
const (
	ModeMissing = 1 << 0
	ModeWP      = 1 << 1
)

// Event types of Msg.Event.
const (
	EventPagefault = 0x12
)

// Flags of a page-fault Msg.
const (
	FlagWrite = 1 << 0 // the fault was a write
	FlagWP    = 1 << 1 // the fault hit a write-protected page
)

// UserModeOnly is the userfaultfd(2) flag that limits the fd to user-mode
// faults; pass it to NewFlags only for unprivileged views.
const UserModeOnly = 1

// Msg is one userfaultfd message, reduced to what a page-fault handler needs.
type Msg struct {
	Event uint8
	Flags uint64 // FlagWrite, FlagWP
	Addr  uint64 // faulting address (not page aligned)
	TID   uint32 // faulting thread, with FeatureThreadID
}

// ErrUnsupported reports that userfaultfd is not available here: another
// OS, a kernel without it, or a process not allowed to use it
// (vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE).
var ErrUnsupported = errors.New("userfaultfd not available")

// PageSize is the base page size the ioctls work in.
const PageSize = 4096
