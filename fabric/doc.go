// Package fabric is the core of the VMemTrans memory fabric.
//
// It defines what every other part agrees on: guest frame numbers and the
// 4 KiB page, the 64-bit location word that says where a page lives (local,
// remote on a sub-host slot, or moving) together with a generation that
// changes on every move, the location map that holds one word per GFN in a
// memfd (one writer, any number of read-only mappers), and the lock-free read
// protocol every reader follows: load the word, read the data, load the word
// again, retry if it changed.
//
// It also defines the Transport interface: batches of (slot, buffer) pairs
// read from or written to a sub-host region, all outstanding at once, with an
// error per entry. Implementations live in tcpfallback and rdma; the
// conformance suite in fabric/fabrictest runs against each of them. Every
// implementation refuses entries with CheckSlotIO (StartBatch) and reports a
// batch's outcome with FinishBatch, so all of them say the same thing.
//
// Memory is the transparent reader an IDS uses: it implements
// introspect/physmem.Reader over a split-memory VM (its RAM memfd, location
// map, guest-physical layout and the sub-hosts' transports). Every page read
// follows the read protocol, all pages of one ReadPhys in one run of
// ReadStableBatch. Local pages are read through the SIGBUS view: a read-only
// private mapping of the RAM memfd registered with Memory's own userfaultfd
// in SIGBUS mode, read with copy() while faults are recovered, so a hole
// faults instead of being allocated; pread is the fallback where the view
// cannot be made (LocalMode says which). A hole under a local word that
// held still across the read is a frame the guest never wrote and reads as
// zeros: the runtime punches a page only after publishing its remote word
// and installs one only before publishing its local word, so a page with
// content is never a hole under a local word. NextData skips such frames,
// so a scan reads what the guest wrote, not its whole size.
// Remote pages are read by the configured Method: proxy (one transport
// batch per sub-host per round, buffers filled in place), self (the
// Exchanger pages them in, then they are read locally; a frame it fails is
// read by proxy and counted; its answers are not trusted: a frame answered
// done whose word did not move is read by proxy too, counted unverified and
// reported to an ExchangeAuditor; it gets half the call's remaining time,
// so a silent exchanger still leaves time for proxy reads), or adaptive (proxy plus a bounded CLOCK cache
// keyed by GFN and location word, whose entries stay valid only while their
// word keeps being observed unchanged at least every cacheTrust, which rules
// out a generation wrap in between). A dead or slow sub-host fails only the
// ranges it holds, within MemoryConfig.Timeout, never with zeros.
//
// Memory is also a physmem.Lender: LendPhys shows memory in place, without
// copying it, for scans. It walks its range in rounds (256 pages, doubling
// to 8192, each ending once it holds 512 pages to read, so every fetch is
// a full batch): a round loads the words of its pages, shows local ones straight
// from the view and adaptive cache hits straight from the cache (under the
// cache's read lock, so no insert reuses them meanwhile; frames whose pages
// lie one after another in the cache are one segment), shows frames never
// written as Zero segments (a local word with no page in guest RAM, the
// word unchanged across the residency query), and reads the rest with one
// ReadPhys. The next two rounds are read while the caller searches the
// current one (their fetches in flight together), into buffers a Memory
// faults in as it opens. After a local run is shown its
// words are reloaded; a run whose word changed, or whose view faulted
// while the caller read it (the page moved away), is read again by
// ReadPhys and shown again with Retry set.
//
// fabric imports none of rdma, tcpfallback or kvmhost.
package fabric
