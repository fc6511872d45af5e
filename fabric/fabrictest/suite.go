package fabrictest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// Peer is a Transport connected to a freshly made region, and a way to kill
// the side that serves it.
type Peer struct {
	Transport fabric.Transport
	// Kill abruptly kills the serving side (server process or listener and
	// all its connections), as a crashed sub-host would.
	Kill func()
}

// Factory makes a Peer over a fresh, zero-filled region of slots slots. It
// registers the release of whatever serves the region with t.Cleanup.
type Factory func(t testing.TB, slots uint64) Peer

// suiteSlots is the region size most subtests use: room for a 1024-entry
// batch with random, distinct slots.
const suiteSlots = 4096

// Run runs the conformance suite against the Transports newPeer makes.
func Run(t *testing.T, newPeer Factory) {
	tests := []struct {
		name string
		run  func(t *testing.T, newPeer Factory)
	}{
		{"Identity", testIdentity},
		{"RoundTrip", testRoundTrip},
		{"BatchSizes", testBatchSizes},
		{"Overwrite", testOverwrite},
		{"BadEntries", testBadEntries},
		{"StaleEntryErrCleared", testStaleErrCleared},
		{"EmptyBatch", testEmptyBatch},
		{"ConcurrentCallers", testConcurrent},
		{"CancelledContext", testCancelled},
		{"Deadline", testDeadline},
		{"PeerDeathMidBatch", testPeerDeath},
		{"CloseMidBatch", testCloseMidBatch},
		{"UseAfterClose", testUseAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newPeer) })
	}
}

// open makes a peer and closes its Transport when the subtest ends.
func open(t *testing.T, newPeer Factory, slots uint64) Peer {
	t.Helper()
	p := newPeer(t, slots)
	if p.Transport == nil {
		t.Fatal("factory returned a Peer without a Transport")
	}
	t.Cleanup(func() {
		bounded(t, "Close", p.Transport.Close)
	})
	return p
}

func read(t testing.TB, tr fabric.Transport, ctx context.Context, batch []fabric.SlotIO) error {
	t.Helper()
	return bounded(t, "ReadSlots", func() error { return tr.ReadSlots(ctx, batch) })
}

func write(t testing.TB, tr fabric.Transport, ctx context.Context, batch []fabric.SlotIO) error {
	t.Helper()
	return bounded(t, "WriteSlots", func() error { return tr.WriteSlots(ctx, batch) })
}

func testIdentity(t *testing.T, newPeer Factory) {
	for _, n := range []uint64{1, 3, suiteSlots} {
		p := open(t, newPeer, n)
		if got := p.Transport.Slots(); got != n {
			t.Errorf("Slots() = %d for a region of %d slots", got, n)
		}
		if p.Transport.Kind() == "" {
			t.Errorf("Kind() is empty")
		}
	}
}

func testRoundTrip(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, suiteSlots).Transport
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	slots := distinctSlots(rng, 300, suiteSlots)
	if err := write(t, tr, ctx, writeBatch(slots[:200], 1)); err != nil {
		t.Fatalf("WriteSlots: %v", err)
	}
	got := readBatch(slots[:200])
	if err := read(t, tr, ctx, got); err != nil {
		t.Fatalf("ReadSlots: %v", err)
	}
	checkContent(t, got, 1)
	// Slots never written read as zeros.
	fresh := readBatch(slots[200:])
	for i := range fresh {
		fresh[i].Buf[0] = 0xff
	}
	if err := read(t, tr, ctx, fresh); err != nil {
		t.Fatalf("ReadSlots: %v", err)
	}
	for _, e := range fresh {
		for _, c := range e.Buf {
			if c != 0 {
				t.Fatalf("unwritten slot %d does not read as zeros", e.Slot)
			}
		}
	}
	// The last slot of the region is reachable.
	last := []uint64{suiteSlots - 1}
	if err := write(t, tr, ctx, writeBatch(last, 7)); err != nil {
		t.Fatalf("WriteSlots of the last slot: %v", err)
	}
	got = readBatch(last)
	if err := read(t, tr, ctx, got); err != nil {
		t.Fatalf("ReadSlots of the last slot: %v", err)
	}
	checkContent(t, got, 7)
}

func testBatchSizes(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, suiteSlots).Transport
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	for v, n := range []int{1, 2, 3, 7, 15, 16, 17, 63, 64, 127, 128, 255, 256, 257, 511, 1000, 1023, 1024} {
		slots := distinctSlots(rng, n, suiteSlots)
		version := uint64(100 + v)
		if err := write(t, tr, ctx, writeBatch(slots, version)); err != nil {
			t.Fatalf("WriteSlots of %d: %v", n, err)
		}
		got := readBatch(slots)
		if err := read(t, tr, ctx, got); err != nil {
			t.Fatalf("ReadSlots of %d: %v", n, err)
		}
		checkContent(t, got, version)
	}
}

// A batch that names one slot twice is served in order for writes; reads of
// the same slot twice return the same page.
func testOverwrite(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, 16).Transport
	ctx := context.Background()
	for v := uint64(1); v <= 3; v++ {
		if err := write(t, tr, ctx, writeBatch([]uint64{5, 6}, v)); err != nil {
			t.Fatal(err)
		}
		got := readBatch([]uint64{5, 6, 5})
		if err := read(t, tr, ctx, got); err != nil {
			t.Fatal(err)
		}
		checkContent(t, got, v)
	}
}

func testBadEntries(t *testing.T, newPeer Factory) {
	const slots = 64
	tr := open(t, newPeer, slots).Transport
	ctx := context.Background()
	// want[i] is the sentinel entry i must fail with, nil for a good entry.
	type entry struct {
		io   fabric.SlotIO
		want error
	}
	build := func(version uint64) []entry {
		return []entry{
			{fabric.SlotIO{Slot: 0, Buf: page(0, version)}, nil},
			{fabric.SlotIO{Slot: slots, Buf: page(slots, version)}, fabric.ErrSlotRange},
			{fabric.SlotIO{Slot: 1, Buf: page(1, version)}, nil},
			{fabric.SlotIO{Slot: 2, Buf: make([]byte, 100)}, fabric.ErrBufferSize},
			{fabric.SlotIO{Slot: math.MaxUint64, Buf: page(3, version)}, fabric.ErrSlotRange},
			{fabric.SlotIO{Slot: 4, Buf: nil}, fabric.ErrBufferSize},
			{fabric.SlotIO{Slot: slots - 1, Buf: page(slots-1, version)}, nil},
			{fabric.SlotIO{Slot: 5, Buf: make([]byte, fabric.PageSize+1)}, fabric.ErrBufferSize},
			{fabric.SlotIO{Slot: 1 << 40, Buf: page(6, version)}, fabric.ErrSlotRange},
			{fabric.SlotIO{Slot: 7, Buf: page(7, version)}, nil},
		}
	}
	check := func(op string, entries []entry, batch []fabric.SlotIO, err error) {
		t.Helper()
		if !errors.Is(err, fabric.ErrPartial) {
			t.Fatalf("%s with bad entries returned %v, want ErrPartial", op, err)
		}
		for i, e := range entries {
			got := batch[i].Err
			switch {
			case e.want == nil && got != nil:
				t.Errorf("%s: good entry %d (slot %d) failed: %v", op, i, e.io.Slot, got)
			case e.want != nil && !errors.Is(got, e.want):
				t.Errorf("%s: entry %d (slot %d, %d-byte buffer) Err = %v, want %v", op, i, e.io.Slot, len(e.io.Buf), got, e.want)
			case e.want != nil && got.Error() != fabric.CheckSlotIO(e.io, slots).Error():
				// one rule for every Transport: fabric's check, not a copy
				t.Errorf("%s: entry %d Err %q, not fabric.CheckSlotIO's %q", op, i, got, fabric.CheckSlotIO(e.io, slots))
			}
		}
		// fabric.FinishBatch's shape: the first entry error is named.
		if !errors.Is(err, fabric.ErrSlotRange) {
			t.Errorf("%s: batch error %v does not wrap the first entry error (ErrSlotRange)", op, err)
		}
	}
	entries := build(1)
	batch := make([]fabric.SlotIO, len(entries))
	for i := range entries {
		batch[i] = entries[i].io
	}
	check("WriteSlots", entries, batch, write(t, tr, ctx, batch))

	entries = build(1)
	for i := range entries {
		if len(entries[i].io.Buf) == fabric.PageSize {
			entries[i].io.Buf = make([]byte, fabric.PageSize)
		}
	}
	for i := range entries {
		batch[i] = entries[i].io
	}
	check("ReadSlots", entries, batch, read(t, tr, ctx, batch))
	for i, e := range entries {
		if e.want == nil {
			checkContent(t, batch[i:i+1], 1)
		}
	}
	// Bad slots did not disturb their neighbours: slot 2 and 4, whose
	// entries had bad buffers, still read as zeros.
	zeros := readBatch([]uint64{2, 4, 5})
	if err := read(t, tr, ctx, zeros); err != nil {
		t.Fatal(err)
	}
	for _, e := range zeros {
		for _, c := range e.Buf {
			if c != 0 {
				t.Fatalf("slot %d was written by an entry with a bad buffer", e.Slot)
			}
		}
	}
}

func testStaleErrCleared(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, 8).Transport
	ctx := context.Background()
	stale := errors.New("stale error from an earlier call")
	batch := writeBatch([]uint64{1, 2}, 9)
	for i := range batch {
		batch[i].Err = stale
	}
	if err := write(t, tr, ctx, batch); err != nil {
		t.Fatal(err)
	}
	got := readBatch([]uint64{1, 2})
	for i := range got {
		got[i].Err = stale
	}
	if err := read(t, tr, ctx, got); err != nil {
		t.Fatal(err)
	}
	for _, e := range append(batch, got...) {
		if e.Err != nil {
			t.Fatalf("successful entry for slot %d kept Err %v", e.Slot, e.Err)
		}
	}
	checkContent(t, got, 9)
}

func testEmptyBatch(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, 8).Transport
	ctx := context.Background()
	for _, b := range [][]fabric.SlotIO{nil, {}} {
		if err := read(t, tr, ctx, b); err != nil {
			t.Errorf("ReadSlots of an empty batch: %v", err)
		}
		if err := write(t, tr, ctx, b); err != nil {
			t.Errorf("WriteSlots of an empty batch: %v", err)
		}
	}
}

func testConcurrent(t *testing.T, newPeer Factory) {
	const callers, perCaller, rounds = 8, 256, 6
	tr := open(t, newPeer, callers*perCaller).Transport
	ctx := context.Background()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 77))
			base := uint64(c * perCaller)
			for r := range rounds {
				n := 1 + rng.IntN(64)
				slots := distinctSlots(rng, n, perCaller)
				for i := range slots {
					slots[i] += base
				}
				version := uint64(1000*c + r)
				if err := tr.WriteSlots(ctx, writeBatch(slots, version)); err != nil {
					t.Errorf("caller %d WriteSlots: %v", c, err)
					return
				}
				got := readBatch(slots)
				if err := tr.ReadSlots(ctx, got); err != nil {
					t.Errorf("caller %d ReadSlots: %v", c, err)
					return
				}
				if err := contentErr(got, version); err != nil {
					t.Errorf("caller %d: %v", c, err)
					return
				}
			}
		}()
	}
	bounded(t, "concurrent callers", func() error { wg.Wait(); return nil })
}

func testCancelled(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, suiteSlots).Transport
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slots := distinctSlots(rand.New(rand.NewPCG(5, 6)), 1024, suiteSlots)
	for _, op := range []struct {
		name string
		call func(context.Context, []fabric.SlotIO) error
	}{{"ReadSlots", tr.ReadSlots}, {"WriteSlots", tr.WriteSlots}} {
		batch := writeBatch(slots, 1)
		start := time.Now()
		err := bounded(t, op.name, func() error { return op.call(ctx, batch) })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s with a cancelled context: %v, want context.Canceled", op.name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s with a cancelled context took %v", op.name, d)
		}
		allEntriesFailed(t, op.name, batch)
	}
	// The transport still works afterwards.
	got := readBatch(slots[:4])
	if err := read(t, tr, context.Background(), got); err != nil {
		t.Fatalf("ReadSlots after a cancelled call: %v", err)
	}
}

func testDeadline(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, suiteSlots).Transport
	slots := distinctSlots(rand.New(rand.NewPCG(7, 8)), 256, suiteSlots)

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	batch := readBatch(slots)
	if err := read(t, tr, expired, batch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadSlots past its deadline: %v, want context.DeadlineExceeded", err)
	}
	allEntriesFailed(t, "ReadSlots past its deadline", batch)

	ample, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := write(t, tr, ample, writeBatch(slots, 3)); err != nil {
		t.Fatalf("WriteSlots within its deadline: %v", err)
	}

	// A deadline that expires while the caller keeps issuing batches ends
	// the calls promptly with DeadlineExceeded.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	limit := time.Now().Add(callTimeout)
	for {
		batch := readBatch(slots)
		err := read(t, tr, short, batch)
		if err == nil {
			checkContent(t, batch, 3)
		} else if errors.Is(err, context.DeadlineExceeded) {
			break
		} else {
			t.Fatalf("ReadSlots under a short deadline: %v, want nil or DeadlineExceeded", err)
		}
		if time.Now().After(limit) {
			t.Fatalf("calls kept succeeding %v after their deadline", callTimeout)
		}
	}
}

// inFlight keeps callers issuing big read batches until each gets an error,
// calls stop() once batches are flowing, and checks that every caller ends in
// bounded time with an error wrapping one of want.
func inFlight(t *testing.T, tr fabric.Transport, what string, stop func(), want ...error) {
	const callers, batchSize = 4, 1024
	var started sync.Once
	flowing := make(chan struct{})
	var succeeded atomic.Int64
	var stopped atomic.Bool
	errs := make(chan error, callers)
	for c := range callers {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(c), 99))
			for {
				batch := readBatch(distinctSlots(rng, batchSize, tr.Slots()))
				if c%2 == 1 {
					batch = writeBatch(distinctSlots(rng, batchSize, tr.Slots()), 5)
				}
				issuedAfterStop := stopped.Load()
				var err error
				done := make(chan struct{})
				go func() {
					if c%2 == 1 {
						err = tr.WriteSlots(context.Background(), batch)
					} else {
						err = tr.ReadSlots(context.Background(), batch)
					}
					close(done)
				}()
				select {
				case <-done:
				case <-time.After(callTimeout):
					errs <- errors.New("a batch hung")
					return
				}
				started.Do(func() { close(flowing) })
				if err != nil {
					errs <- batchFailure(err, batch, want...)
					return
				}
				if issuedAfterStop {
					errs <- fmt.Errorf("a batch issued after %s succeeded", what)
					return
				}
				succeeded.Add(1)
			}
		}()
	}
	select {
	case <-flowing:
	case <-time.After(callTimeout):
		t.Fatalf("no batch completed within %v", callTimeout)
	}
	// Let the next batches get under way before pulling the plug.
	time.Sleep(5 * time.Millisecond)
	bounded(t, what, func() error { stop(); return nil })
	stopped.Store(true)
	deadline := time.After(2 * callTimeout)
	for range callers {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("after %s: %v", what, err)
			}
		case <-deadline:
			t.Fatalf("callers still busy %v after %s", 2*callTimeout, what)
		}
	}
	t.Logf("%d batches completed before %s", succeeded.Load(), what)
}

func testPeerDeath(t *testing.T, newPeer Factory) {
	p := open(t, newPeer, suiteSlots)
	if p.Kill == nil {
		t.Fatal("factory returned a Peer without Kill")
	}
	inFlight(t, p.Transport, "Kill", p.Kill, fabric.ErrPeer, fabric.ErrClosed)
	// Every later call fails too, and fast.
	batch := readBatch([]uint64{0, 1})
	err := read(t, p.Transport, context.Background(), batch)
	if !isOneOf(err, fabric.ErrPeer, fabric.ErrClosed) {
		t.Fatalf("ReadSlots after Kill: %v, want ErrPeer or ErrClosed", err)
	}
	allEntriesFailed(t, "ReadSlots after Kill", batch)
	batch = writeBatch([]uint64{0, 1}, 1)
	if err := write(t, p.Transport, context.Background(), batch); !isOneOf(err, fabric.ErrPeer, fabric.ErrClosed) {
		t.Fatalf("WriteSlots after Kill: %v, want ErrPeer or ErrClosed", err)
	}
}

func testCloseMidBatch(t *testing.T, newPeer Factory) {
	p := open(t, newPeer, suiteSlots)
	inFlight(t, p.Transport, "Close", func() { p.Transport.Close() }, fabric.ErrClosed)
}

func testUseAfterClose(t *testing.T, newPeer Factory) {
	tr := open(t, newPeer, 8).Transport
	if err := bounded(t, "Close", tr.Close); err != nil {
		t.Fatalf("Close: %v", err)
	}
	bounded(t, "second Close", tr.Close)
	batch := readBatch([]uint64{0, 1})
	if err := read(t, tr, context.Background(), batch); !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("ReadSlots after Close: %v, want ErrClosed", err)
	}
	allEntriesFailed(t, "ReadSlots after Close", batch)
	batch = writeBatch([]uint64{0, 1}, 1)
	if err := write(t, tr, context.Background(), batch); !errors.Is(err, fabric.ErrClosed) {
		t.Fatalf("WriteSlots after Close: %v, want ErrClosed", err)
	}
	allEntriesFailed(t, "WriteSlots after Close", batch)
}
