// Package pagingtest builds synthetic x86-64 page tables in a byte slice, so
// paging and the code above it can be tested on chosen mappings, in 4- and
// 5-level mode, without a guest.
package pagingtest

import (
	"encoding/binary"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/paging"
)

// Entry bits the builder writes.
const (
	Present  = 1 << 0
	Writable = 1 << 1
	Large    = 1 << 7
	NX       = 1 << 63
)

// Builder lays page tables out in Mem, allocating table pages upward from a
// chosen physical address. Leaf entries carry NX so walkers must mask it.
type Builder struct {
	Mem  []byte
	mode paging.Mode
	root uint64
	next uint64
}

// NewBuilder returns a Builder over memSize bytes of physical memory whose
// page tables start at tableBase (page-aligned) and grow upward.
func NewBuilder(mode paging.Mode, memSize, tableBase uint64) *Builder {
	b := &Builder{Mem: make([]byte, memSize), mode: mode, next: tableBase}
	b.root = b.alloc()
	return b
}

// CR3 is the value to load for these tables.
func (b *Builder) CR3() uint64 { return b.root }

// Reader serves Mem as physical memory.
func (b *Builder) Reader() *image.Image { return image.NewBytes(b.Mem) }

func (b *Builder) alloc() uint64 {
	pa := b.next
	if pa+paging.PageSize4K > uint64(len(b.Mem)) {
		panic(fmt.Sprintf("pagingtest: no room for a table at %#x", pa))
	}
	b.next += paging.PageSize4K
	return pa
}

func (b *Builder) entry(pa uint64) uint64       { return binary.LittleEndian.Uint64(b.Mem[pa:]) }
func (b *Builder) setEntry(pa uint64, v uint64) { binary.LittleEndian.PutUint64(b.Mem[pa:], v) }

// Map maps the page of size bytes (4 KiB, 2 MiB or 1 GiB) at va to pa.
func (b *Builder) Map(va, pa, size uint64) error {
	leafShift := map[uint64]uint{paging.PageSize4K: 12, paging.PageSize2M: 21, paging.PageSize1G: 30}[size]
	if leafShift == 0 || va%size != 0 || pa%size != 0 {
		return fmt.Errorf("pagingtest: map %#x -> %#x: size %#x or alignment invalid", va, pa, size)
	}
	table := b.root
	for shift := uint(12 + 9*(int(b.mode)-1)); ; shift -= 9 {
		slot := table + (va>>shift&511)*8
		if shift == leafShift {
			v := pa | Present | Writable | NX
			if size > paging.PageSize4K {
				v |= Large
			}
			b.setEntry(slot, v)
			return nil
		}
		e := b.entry(slot)
		if e&Present == 0 {
			e = b.alloc() | Present | Writable
			b.setEntry(slot, e)
		} else if e&Large != 0 {
			return fmt.Errorf("pagingtest: map %#x: a large page already covers it", va)
		}
		table = e & 0x000f_ffff_ffff_f000
	}
}

// Unmap clears the leaf entry of the page of size bytes at va.
func (b *Builder) Unmap(va, size uint64) {
	leafShift := map[uint64]uint{paging.PageSize4K: 12, paging.PageSize2M: 21, paging.PageSize1G: 30}[size]
	table := b.root
	for shift := uint(12 + 9*(int(b.mode)-1)); ; shift -= 9 {
		slot := table + (va>>shift&511)*8
		if shift == leafShift {
			b.setEntry(slot, 0)
			return
		}
		e := b.entry(slot)
		if e&Present == 0 {
			return
		}
		table = e & 0x000f_ffff_ffff_f000
	}
}
