package paging_test

import (
	"sync/atomic"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/paging/pagingtest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// countingReader counts batches and ranges so tests can see how a walk reads.
type countingReader struct {
	physmem.Reader
	batches, ranges atomic.Int64
}

func (c *countingReader) ReadPhys(rs []physmem.Range) error {
	c.batches.Add(1)
	c.ranges.Add(int64(len(rs)))
	return c.Reader.ReadPhys(rs)
}

func (c *countingReader) reset() { c.batches.Store(0); c.ranges.Store(0) }

const (
	mib = 1 << 20
	gib = 1 << 30

	kernText = 0xffffffff81000000 // 4 KiB pages
	kernData = 0xffffffff82000000 // a 2 MiB page
	direct   = 0xffff888000000000 // a 1 GiB page
	userVA   = 0x00007f0000001000 // a 4 KiB page
)

// layout is a guest with 64 MiB of memory, tables from 32 MiB.
func layout(t testing.TB, mode paging.Mode) *pagingtest.Builder {
	t.Helper()
	b := pagingtest.NewBuilder(mode, 64*mib, 32*mib)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := uint64(0); i < 4; i++ {
		// Deliberately scattered frames: VA order is not PA order.
		must(b.Map(kernText+i*4096, 0x100000+(3-i)*4096, paging.PageSize4K))
	}
	must(b.Map(kernData, 0x400000, paging.PageSize2M))
	must(b.Map(direct, 0, paging.PageSize1G))
	must(b.Map(userVA, 0x7000, paging.PageSize4K))
	return b
}
