package agent

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

type seg struct {
	paddr, vaddr, size uint64
	typ                elf.ProgType
}

// fakeCore builds an ELF core laid out as /proc/kcore is: program headers,
// then each segment's bytes, each page of a segment starting with its
// physical address (so a read shows which page it hit).
func fakeCore(segs []seg) *bytes.Reader {
	const ehsize, phsize = 64, 56
	var hdr bytes.Buffer
	ident := [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)}
	hdr.Write(ident[:])
	le := binary.LittleEndian
	w := func(v any) { _ = binary.Write(&hdr, le, v) }
	w(uint16(elf.ET_CORE))
	w(uint16(elf.EM_X86_64))
	w(uint32(elf.EV_CURRENT))
	w(uint64(0))      // entry
	w(uint64(ehsize)) // phoff
	w(uint64(0))      // shoff
	w(uint32(0))      // flags
	w(uint16(ehsize))
	w(uint16(phsize))
	w(uint16(len(segs)))
	w(uint16(64)) // shentsize
	w(uint16(0))
	w(uint16(0))
	off := uint64(ehsize + phsize*len(segs))
	var data bytes.Buffer
	for _, s := range segs {
		w(uint32(s.typ))
		w(uint32(elf.PF_R))
		w(off + uint64(data.Len()))
		w(s.vaddr)
		w(s.paddr)
		w(s.size) // filesz
		w(s.size) // memsz
		w(uint64(fabric.PageSize))
		for a := uint64(0); a < s.size; a += fabric.PageSize {
			page := make([]byte, fabric.PageSize)
			le.PutUint64(page, s.paddr+a)
			data.Write(page)
		}
	}
	hdr.Write(data.Bytes())
	return bytes.NewReader(hdr.Bytes())
}

// kcore's RAM segments map GFNs to file offsets; kernel text, vmalloc
// (no physical address) and notes are not RAM; a frame outside RAM fails.
func TestKcoreSegments(t *testing.T) {
	const dm = 0xffff888000000000
	core := fakeCore([]seg{
		{typ: elf.PT_NOTE, size: 0},
		{typ: elf.PT_LOAD, paddr: 0x1000000, vaddr: 0xffffffff81000000, size: 2 * fabric.PageSize}, // text
		{typ: elf.PT_LOAD, paddr: ^uint64(0), vaddr: 0xffffc90000000000, size: fabric.PageSize},    // vmalloc
		{typ: elf.PT_LOAD, paddr: 0x100000, vaddr: dm + 0x100000, size: 4 * fabric.PageSize},
		{typ: elf.PT_LOAD, paddr: 0x1000, vaddr: dm + 0x1000, size: 2 * fabric.PageSize},
	})
	k, err := NewKcore(core)
	if err != nil {
		t.Fatal(err)
	}
	want := []fabric.PhysRange{{Start: 0x1000, End: 0x3000}, {Start: 0x100000, End: 0x104000}}
	if got := k.RAM(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ram %v, want %v", got, want)
	}
	for _, g := range []fabric.GFN{1, 2, 0x100, 0x103} {
		off, ok := k.Offset(g)
		if !ok {
			t.Fatalf("gfn %#x not found", g)
		}
		var b [8]byte
		if _, err := core.ReadAt(b[:], int64(off)); err != nil || binary.LittleEndian.Uint64(b[:]) != g.Addr() {
			t.Fatalf("gfn %#x at offset %#x reads %#x (%v)", g, off, binary.LittleEndian.Uint64(b[:]), err)
		}
	}
	gfns := []fabric.GFN{0, 1, 3, 0x1000, 0x100, 0x104, 1 << 60}
	errs := make([]error, len(gfns))
	k.Touch(context.Background(), gfns, errs)
	for i, g := range gfns {
		ram := g == 1 || g == 0x100
		if ram != (errs[i] == nil) || (!ram && !errors.Is(errs[i], ErrNotRAM)) {
			t.Fatalf("gfn %#x: %v", g, errs[i])
		}
		if r := ReasonOf(errs[i]); ram != (r == ReasonDone) {
			t.Fatalf("gfn %#x: reason %v", g, r)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.Touch(ctx, gfns[:1], errs)
	if ReasonOf(errs[0]) != ReasonTimeout {
		t.Fatalf("touch after the end: %v", errs[0])
	}
	if _, err := NewKcore(bytes.NewReader([]byte("not an elf"))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("garbage kcore: %v", err)
	}
	if _, err := NewKcore(fakeCore([]seg{{typ: elf.PT_LOAD, paddr: ^uint64(0), vaddr: 1, size: fabric.PageSize}})); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("kcore without ram: %v", err)
	}
}

// Addresses: unix paths and vsock CID:port parse; anything else is refused.
func TestParseAddress(t *testing.T) {
	for s, want := range map[string]Address{
		"unix:/run/a.sock": {Unix: "/run/a.sock"}, "vsock:1:5210": {CID: 1, Port: 5210}, "vsock:3:0x1000": {CID: 3, Port: 4096},
	} {
		got, err := ParseAddress(s)
		if err != nil || got != want || got.String() == "" {
			t.Fatalf("%q: %+v %v", s, got, err)
		}
	}
	for _, s := range []string{"", "unix:", "vsock:1", "vsock:x:1", "tcp:1.2.3.4:5", "/path"} {
		if _, err := ParseAddress(s); !errors.Is(err, ErrAddress) {
			t.Fatalf("%q: %v", s, err)
		}
	}
}

// Key files hold hex (or raw bytes) and must not be readable by others.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode uint32) string {
		p := dir + "/" + name
		if err := writeFile(p, text, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k, err := LoadKey(write("hex", "# agent key\n00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0o600))
	if err != nil || len(k) != 32 || k[1] != 0x11 {
		t.Fatalf("hex key: %x %v", k, err)
	}
	if k, err := LoadKey(write("raw", "a raw pass phrase of some length\n", 0o600)); err != nil || string(k) != "a raw pass phrase of some length" {
		t.Fatalf("raw key: %q %v", k, err)
	}
	if _, err := LoadKey(write("short", "0011\n", 0o600)); !errors.Is(err, ErrKey) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := LoadKey(write("open", "00112233445566778899aabbccddeeff\n", 0o644)); !errors.Is(err, ErrKey) {
		t.Fatalf("world-readable key: %v", err)
	}
}
