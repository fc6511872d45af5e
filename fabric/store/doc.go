// Package store is the sub-host slot store: per-VM regions of 4 KiB slots
// that the main host pages guest memory out to.
//
// A region is a file under the store's state directory mapped MAP_SHARED and
// page-aligned, so that writes through the mapping survive the death of the
// sub-host agent (the page cache keeps them) and Sync makes them survive
// power loss. Bytes returns the whole mapping for RDMA registration.
//
// The main host owns slot allocation; the store only bounds-checks slot
// numbers. Free punches holes in the backing file: a freed slot reads as
// zeros and uses no disk.
//
// On disk, a store directory holds a lock file (one agent per directory) and
// regions/<vm>/{meta,slots}. meta is a fixed 32-byte header (magic, format
// version, page size, slot count, CRC-32C); slots is exactly slots*PageSize
// bytes. A region is created by sizing the slots file and then renaming a
// complete meta file into place, so a crash mid-create leaves no region. A
// slots file holding pages without its meta is a corrupt region: it is
// refused, never recreated over (which would truncate it); Check and Inspect
// report such regions.
//
// VM ids are restricted to ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ so that an id is
// always a single, harmless path element.
//
// A Store and its Regions are safe for concurrent use. The mapping is shared
// memory: callers coordinate access to individual slots themselves. Close
// unmaps every region; slices returned by Slot and Bytes must not be used
// after it.
package store
