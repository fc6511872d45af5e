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
// fabric imports none of rdma, tcpfallback or kvmhost.
package fabric
