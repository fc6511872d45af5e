package paging_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/paging"
	"github.com/vmemtrans/vmemtrans/introspect/paging/pagingtest"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

func TestTranslate(t *testing.T) {
	for _, mode := range []paging.Mode{paging.FourLevel, paging.FiveLevel} {
		t.Run(mode.String(), func(t *testing.T) {
			b := layout(t, mode)
			tr := paging.New(b.Reader(), b.CR3()|0x5 /* PCID */, mode)
			cases := []struct {
				va, pa, size uint64
				err          error
			}{
				{kernText + 0x123, 0x103123, paging.PageSize4K, nil},
				{kernText + 3*4096 + 0xfff, 0x100fff, paging.PageSize4K, nil},
				{kernData + 0x1f_fff8, 0x5f_fff8, paging.PageSize2M, nil},
				{direct + 0x3fff_0000, 0x3fff_0000, paging.PageSize1G, nil},
				{userVA + 8, 0x7008, paging.PageSize4K, nil},
				{kernText + 4*4096, 0, 0, paging.ErrNotPresent},  // PT entry empty
				{0xffffffffc0000000, 0, 0, paging.ErrNotPresent}, // PD empty
				{0x0000100000000000, 0, 0, paging.ErrNotPresent}, // upper levels empty
				{0x0100000000000000, 0, 0, paging.ErrNonCanonical},
				{0x8000000000000000, 0, 0, paging.ErrNonCanonical},
			}
			vas := make([]uint64, len(cases))
			for i, c := range cases {
				vas[i] = c.va
			}
			res, err := tr.Translate(vas)
			if !errors.Is(err, physmem.ErrPartial) {
				t.Fatalf("Translate = %v, want ErrPartial", err)
			}
			for i, c := range cases {
				r := res[i]
				if r.VA != c.va {
					t.Errorf("result %d is for %#x, want %#x", i, r.VA, c.va)
				}
				if c.err != nil {
					if !errors.Is(r.Err, c.err) {
						t.Errorf("va %#x: err %v, want %v", c.va, r.Err, c.err)
					}
					continue
				}
				if r.Err != nil || r.PA != c.pa || r.PageSize != c.size {
					t.Errorf("va %#x: got pa %#x size %#x err %v, want pa %#x size %#x", c.va, r.PA, r.PageSize, r.Err, c.pa, c.size)
				}
			}
		})
	}
}

func TestFiveLevelAddressSpace(t *testing.T) {
	const high = 0xff11_2233_4455_6000 // canonical with LA57 only
	b := pagingtest.NewBuilder(paging.FiveLevel, 16*mib, 8*mib)
	if err := b.Map(high, 0x9000, paging.PageSize4K); err != nil {
		t.Fatal(err)
	}
	if err := b.Map(high&^(1<<48), 0xa000, paging.PageSize4K); err != nil { // differs only in the PML5 index
		t.Fatal(err)
	}
	tr := paging.New(b.Reader(), b.CR3(), paging.ModeFromCR4(paging.CR4LA57))
	if tr.Mode() != paging.FiveLevel {
		t.Fatalf("ModeFromCR4(LA57) = %v", tr.Mode())
	}
	res, err := tr.Translate([]uint64{high + 0x10, high&^(1<<48) + 0x20})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].PA != 0x9010 || res[1].PA != 0xa020 {
		t.Fatalf("got %#x, %#x; want 0x9010, 0xa020", res[0].PA, res[1].PA)
	}
	four := paging.New(b.Reader(), b.CR3(), paging.FourLevel)
	if _, err := four.TranslateOne(high); !errors.Is(err, paging.ErrNonCanonical) {
		t.Fatalf("4-level translation of a 57-bit address: %v, want ErrNonCanonical", err)
	}
}

// TestBatchOneReadPerLevel checks the batching contract: a thousand
// addresses cost one physmem batch per level, each shared entry read once.
func TestBatchOneReadPerLevel(t *testing.T) {
	for _, mode := range []paging.Mode{paging.FourLevel, paging.FiveLevel} {
		t.Run(mode.String(), func(t *testing.T) {
			b := layout(t, mode)
			cr := &countingReader{Reader: b.Reader()}
			tr := paging.New(cr, b.CR3(), mode)
			vas := make([]uint64, 1000)
			for i := range vas {
				vas[i] = direct + uint64(i)*4096*7 // all in one 1 GiB page
			}
			if _, err := tr.Translate(vas); err != nil {
				t.Fatal(err)
			}
			// The walk ends at the PDPT: mode-2 levels, one entry each.
			if want := int64(mode) - 2; cr.batches.Load() != want || cr.ranges.Load() != want {
				t.Fatalf("%d batches, %d ranges; want %d and %d", cr.batches.Load(), cr.ranges.Load(), want, want)
			}
		})
	}
}

func TestCache(t *testing.T) {
	b := layout(t, paging.FourLevel)
	cr := &countingReader{Reader: b.Reader()}
	tr := paging.New(cr, b.CR3(), paging.FourLevel)
	if _, err := tr.Translate([]uint64{kernText, kernData, direct}); err != nil {
		t.Fatal(err)
	}
	cr.reset()
	// Other addresses in the same pages hit the cache, whatever the page size.
	res, err := tr.Translate([]uint64{kernText + 8, kernData + 0x10_0000, direct + 0x2000_0000})
	if err != nil {
		t.Fatal(err)
	}
	if cr.batches.Load() != 0 {
		t.Fatalf("cached translations read memory (%d batches)", cr.batches.Load())
	}
	if res[1].PA != 0x50_0000 || res[2].PA != 0x2000_0000 {
		t.Fatalf("cached results wrong: %+v", res)
	}

	// Remap kernText: the cache keeps the old frame until invalidated.
	b.Unmap(kernText, paging.PageSize4K)
	if err := b.Map(kernText, 0x200000, paging.PageSize4K); err != nil {
		t.Fatal(err)
	}
	if pa, _ := tr.TranslateOne(kernText); pa != 0x103000 {
		t.Fatalf("before invalidation pa = %#x, want the cached 0x103000", pa)
	}
	tr.InvalidateRange(kernText, 1)
	if tr.CacheLen() != 2 {
		t.Fatalf("InvalidateRange left %d entries, want 2", tr.CacheLen())
	}
	if pa, _ := tr.TranslateOne(kernText); pa != 0x200000 {
		t.Fatalf("after InvalidateRange pa = %#x, want 0x200000", pa)
	}
	tr.Invalidate()
	if tr.CacheLen() != 0 {
		t.Fatalf("Invalidate left %d entries", tr.CacheLen())
	}

	// Not-present results are never cached.
	b.Unmap(userVA, paging.PageSize4K)
	if _, err := tr.TranslateOne(userVA); !errors.Is(err, paging.ErrNotPresent) {
		t.Fatalf("unmapped: %v", err)
	}
	if err := b.Map(userVA, 0x8000, paging.PageSize4K); err != nil {
		t.Fatal(err)
	}
	if pa, err := tr.TranslateOne(userVA); err != nil || pa != 0x8000 {
		t.Fatalf("remapped: pa %#x err %v", pa, err)
	}
}

func TestSetCR3(t *testing.T) {
	a := layout(t, paging.FourLevel)
	// A second address space in the same memory: copy the root, change one mapping.
	const other = 48 * mib // a free page above the tables
	copy(a.Mem[other:other+4096], a.Mem[a.CR3():a.CR3()+4096])
	tr := paging.New(a.Reader(), a.CR3(), paging.FourLevel)
	if _, err := tr.TranslateOne(userVA); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(a.Mem[other+(userVA>>39&511)*8:], 0) // other space lacks userVA
	tr.SetCR3(other | 0x3 /* PCID */)
	if tr.CR3() != other || tr.CacheLen() != 0 {
		t.Fatalf("SetCR3: cr3 %#x, %d cached", tr.CR3(), tr.CacheLen())
	}
	if _, err := tr.TranslateOne(userVA); !errors.Is(err, paging.ErrNotPresent) {
		t.Fatalf("userVA under the other CR3: %v, want ErrNotPresent", err)
	}
	if pa, err := tr.TranslateOne(kernData); err != nil || pa != 0x400000 {
		t.Fatalf("kernData under the other CR3: %#x %v", pa, err)
	}
}

func TestTableReadFailure(t *testing.T) {
	b := layout(t, paging.FourLevel)
	tr := paging.New(b.Reader(), 1<<40, paging.FourLevel) // CR3 beyond memory
	_, err := tr.TranslateOne(kernText)
	if !errors.Is(err, paging.ErrTableRead) || !errors.Is(err, physmem.ErrOutOfRange) {
		t.Fatalf("walk from unbacked CR3: %v, want ErrTableRead and ErrOutOfRange", err)
	}
}

func TestCR3Masks(t *testing.T) {
	if got := paging.TableBase(0x8000_0000_0194_4abc); got != 0x1944000 {
		t.Errorf("TableBase = %#x", got)
	}
	if got := paging.KernelCR3(0x1945001); got != 0x1944000 {
		t.Errorf("KernelCR3 = %#x, want 0x1944000", got)
	}
	for va, want := range map[uint64][2]bool{
		0x00007fffffffffff: {true, true},
		0x0000800000000000: {false, true},
		0xffff800000000000: {true, true},
		0xff00000000000000: {false, true},
		0xfe00000000000000: {false, false},
		0xff80000000000000: {false, true},
	} {
		if got := [2]bool{paging.FourLevel.Canonical(va), paging.FiveLevel.Canonical(va)}; got != want {
			t.Errorf("Canonical(%#x) 4/5-level = %v, want %v", va, got, want)
		}
	}
}

// TestKernelCR3Candidates: a CR3 with bit 12 set is the user PGD under PTI
// or, without PTI, the kernel's own table; one with it clear is one table.
func TestKernelCR3Candidates(t *testing.T) {
	if got := paging.KernelCR3Candidates(0x2557000); !slices.Equal(got, []uint64{0x2556000, 0x2557000}) {
		t.Errorf("candidates of 0x2557000 = %#x, want PTI's kernel PGD then the table as is", got)
	}
	if got := paging.KernelCR3Candidates(0x8000_0000_0194_4abc); !slices.Equal(got, []uint64{0x1944000}) {
		t.Errorf("candidates of a CR3 with bit 12 clear = %#x, want only its table base", got)
	}
}
