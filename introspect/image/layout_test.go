package image_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

const gib = 1 << 30

func TestPCLayout(t *testing.T) {
	cases := []struct {
		ram  uint64
		want image.Layout
	}{
		{1 * gib, image.Layout{{Phys: 0, FileOff: 0, Size: 1 * gib}}},
		{3 * gib, image.Layout{{Phys: 0, FileOff: 0, Size: 3 * gib}}},
		// Below the traditional 3.5 GiB split all RAM stays low.
		{3*gib + gib/4, image.Layout{{Phys: 0, FileOff: 0, Size: 3*gib + gib/4}}},
		{4 * gib, image.Layout{{Phys: 0, FileOff: 0, Size: 3 * gib}, {Phys: 4 * gib, FileOff: 3 * gib, Size: gib}}},
		{8 * gib, image.Layout{{Phys: 0, FileOff: 0, Size: 3 * gib}, {Phys: 4 * gib, FileOff: 3 * gib, Size: 5 * gib}}},
	}
	for _, c := range cases {
		got := image.PCLayout(c.ram)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("PCLayout(%#x) = %+v, want %+v", c.ram, got, c.want)
		}
		if got.RAMSize() != c.ram {
			t.Errorf("PCLayout(%#x).RAMSize() = %#x", c.ram, got.RAMSize())
		}
	}
	if got := image.Q35Layout(4 * gib); !reflect.DeepEqual(got, image.Layout{{0, 0, 2 * gib}, {4 * gib, 2 * gib, 2 * gib}}) {
		t.Errorf("Q35Layout(4G) = %+v", got)
	}
	if got := image.Q35Layout(2 * gib); len(got) != 1 {
		t.Errorf("Q35Layout(2G) = %+v, want one low mapping", got)
	}
}

// TestMemFileSplit reads a guest RAM file through a split layout scaled
// down: 16 KiB low at 0, the rest at 4 GiB, a hole in between.
func TestMemFileSplit(t *testing.T) {
	ram := make([]byte, 6*4096)
	for i := range ram {
		ram[i] = byte(i / 4096)
	}
	img, err := image.OpenMemFile(writeFile(t, "guest.mem", ram), image.SplitLayout(uint64(len(ram)), 4*4096))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Size() != 4*gib+2*4096 {
		t.Fatalf("Size() = %#x", img.Size())
	}
	batch := []physmem.Range{
		{Addr: 3 * 4096, Buf: make([]byte, 4096)},
		{Addr: 4 * gib, Buf: make([]byte, 2*4096)},
		{Addr: 4 * 4096, Buf: make([]byte, 1)},
		{Addr: 4*gib - 1, Buf: make([]byte, 2)},
	}
	if err := img.ReadPhys(batch); !errors.Is(err, physmem.ErrPartial) {
		t.Fatalf("ReadPhys = %v, want physmem.ErrPartial", err)
	}
	if batch[0].Err != nil || !bytes.Equal(batch[0].Buf, ram[3*4096:4*4096]) {
		t.Errorf("low RAM: %v", batch[0].Err)
	}
	if batch[1].Err != nil || !bytes.Equal(batch[1].Buf, ram[4*4096:]) {
		t.Errorf("RAM above 4G: %v", batch[1].Err)
	}
	for _, i := range []int{2, 3} {
		if !errors.Is(batch[i].Err, physmem.ErrOutOfRange) {
			t.Errorf("range %d in the PCI hole: %v, want physmem.ErrOutOfRange", i, batch[i].Err)
		}
	}
}

func TestMemFileLayoutBeyondFile(t *testing.T) {
	_, err := image.OpenMemFile(writeFile(t, "small.mem", make([]byte, 4096)), image.PCLayout(gib))
	if !errors.Is(err, image.ErrFormat) {
		t.Fatalf("layout larger than the file: %v, want ErrFormat", err)
	}
}
