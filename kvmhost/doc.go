// Package kvmhost is the split-memory runtime: it holds one VM's guest RAM
// on the main host and the rest of it on sub-hosts, and moves pages between
// them as the VM runs.
//
// Contract:
//   - Guest RAM is a memfd (offset == guest-physical address, size == end of
//     the layout, holes left as holes) mapped MAP_SHARED by the runtime and
//     registered with userfaultfd for missing and write-protect faults.
//     RAMFile hands readers an O_RDONLY reopen of it.
//   - The location map (fabric.LocationMap, one word per GFN up to the end
//     of the layout) says where each backed page is; every move bumps the
//     generation once: a page-in goes remote → local, a page-out local →
//     remote. No word is ever published moving: the old place keeps a valid
//     copy until the new word is published (the slot is freed, the memfd
//     hole punched only after it), so readers never wait out a move. A page
//     is in one place at rest: resident pages in the memfd, the others in a
//     sub-host slot with a hole in the memfd.
//   - New split-migrates the image. A page of zeros is a frame the guest
//     never wrote and is held nowhere: a memfd hole under a local word
//     (readers read such a hole as zeros; the first fault fills it with
//     zeros, and from then on it is a resident page like any other). Of the
//     pages with content, ResidentPct (spread over the layout in groups of
//     16) stay resident, which is the resident limit, and the rest go to
//     slots, spread over the sub-hosts in runs of 64. The main host owns
//     slot allocation; each sub-host region needs SlotsNeeded slots.
//   - A missing fault pages its page in (batched per read of the uffd);
//     MakeResident does the same on request (self paging). Above the
//     resident limit victims are paged out, chosen by a clock with second
//     chance (a page-in, a request, or a vCPU's touch — the accessed bit
//     the synthetic workload sets, as hardware would — marks a page used),
//     in contiguous runs, in the fence order that
//     loses no concurrent write: mark moving (in the runtime) and
//     write-protect; copy out by pread of the memfd; WriteSlots to a free
//     slot; word remote; punch the hole; unprotect, which wakes the writers
//     held meanwhile. One mutex serialises every move, so a write-protect
//     fault is held until the eviction that fenced its page is done.
//   - A page-in that fails leaves the word as it was and the
//     faulting thread is woken to retry after faultRetry; MakeResident
//     returns per-GFN errors. A page-out that fails keeps the page resident.
//   - Only the runtime's dedicated locked OS threads (the fault handler and
//     the workload's vCPUs) touch the registered mapping, and they touch it
//     with plain Go loads and stores, never copy() or sync/atomic: a fault
//     inside runtime assembly or race-detector C code cannot be preempted and
//     would block a garbage collection the handler may be waiting for. Start
//     raises GOMAXPROCS so vCPUs blocked in faults (each holding a P) leave
//     Ps for the handler and the transports.
//   - The synthetic workload writes only Workload.WritableGFNs, each page
//     by one thread, stamping the whole page (see Stamp, VerifyStamp,
//     IsStamped); it reads any backed page.
//   - Counters: Stats, and Collectors for Prometheus.
//   - NewForSpace serves a guest whose RAM a VMM (QEMU) maps in its own
//     address space: the fault source is that address space (the
//     userfaultfd the VMM made and handed over, see kvmhost/handoff, and the
//     base of its mapping) instead of the runtime's own mapping; pager,
//     handler and location map are the same. Every frame starts a local
//     hole; the resident limit is ResidentPct of the frames the guest has
//     touched (zero-filled), never below MinResident. The runtime does not
//     map such RAM at all: it reads resident pages by pread.
package kvmhost
