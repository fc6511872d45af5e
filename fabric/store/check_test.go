package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// A slots file that lost its meta still holds pages: opening the VM with a
// size must refuse, not recreate the region over it (which truncated it).
func TestMissingMetaNeverTruncates(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	r, err := s.Region("vm", 8)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Slot(5)
	fillPattern(b, "vm", 5)
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	slots := filepath.Join(dir, regionsName, "vm", slotsName)
	if err := os.Remove(filepath.Join(dir, regionsName, "vm", metaName)); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	bad, err := s.Check()
	if err != nil || len(bad) != 1 || bad[0].VM != "vm" || !errors.Is(bad[0].Err, ErrCorrupt) {
		t.Fatalf("Check = %+v, %v; want vm reported corrupt", bad, err)
	}
	if _, err := s.Region("vm", 8); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Region over slots without meta = %v, want ErrCorrupt", err)
	}
	if _, err := s.Lookup("vm"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Lookup = %v, want ErrCorrupt", err)
	}
	st, err := os.Stat(slots)
	if err != nil || st.Size() != 8*fabric.PageSize {
		t.Fatalf("slots file after refused opens: %v, %v; want it untouched", st, err)
	}
	// The operator's way out: remove the corrupt region, then recreate.
	if err := s.Remove("vm"); err != nil {
		t.Fatalf("Remove of a corrupt region: %v", err)
	}
	if _, err := s.Region("vm", 8); err != nil {
		t.Fatalf("Region after Remove: %v", err)
	}
}

// A creation cut short before meta was written leaves an empty slots file:
// no page was ever stored there, so the region is simply created again.
func TestEmptyOrphanSlotsAreNoRegion(t *testing.T) {
	dir := t.TempDir()
	vmDir := filepath.Join(dir, regionsName, "vm")
	if err := os.MkdirAll(vmDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vmDir, slotsName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(vmDir, slotsName), 4*fabric.PageSize); err != nil {
		t.Fatal(err)
	}
	all, err := Inspect(dir)
	if err != nil || len(all) != 0 {
		t.Fatalf("Inspect = %+v, %v; want no region", all, err)
	}
	s := openStore(t, dir)
	defer s.Close()
	if _, err := s.Region("vm", 4); err != nil {
		t.Fatalf("Region over an empty orphan slots file: %v", err)
	}
}

func TestInspectReportsSizesAndHealth(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	r, _ := s.Region("a", 4)
	b, _ := r.Slot(0)
	b[0] = 1
	_ = r.Sync()
	if _, err := s.Region("b", 2); err != nil {
		t.Fatal(err)
	}
	// Inspect works while the store is open (no lock taken).
	if err := os.Truncate(filepath.Join(dir, regionsName, "b", slotsName), fabric.PageSize); err != nil {
		t.Fatal(err)
	}
	all, err := Inspect(dir)
	if err != nil || len(all) != 2 {
		t.Fatalf("Inspect = %+v, %v", all, err)
	}
	if all[0].VM != "a" || all[0].Slots != 4 || all[0].Err != nil || all[0].ResidentBytes == 0 {
		t.Errorf("region a = %+v", all[0])
	}
	if all[1].VM != "b" || !errors.Is(all[1].Err, ErrCorrupt) {
		t.Errorf("region b = %+v, want corrupt", all[1])
	}
	s.Close()
}

func TestStoreSlots(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	r, err := s.Region("vm", 8)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]byte, 3*fabric.PageSize)
	for i := range pages {
		pages[i] = byte(i/fabric.PageSize + 1)
	}
	if err := r.StoreSlots(4, pages); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 8; i++ {
		b, _ := r.Slot(i)
		want := byte(0)
		if i >= 4 && i < 7 {
			want = byte(i - 3)
		}
		if b[0] != want || b[fabric.PageSize-1] != want {
			t.Fatalf("slot %d through the mapping = %d, want %d", i, b[0], want)
		}
	}
	if err := r.StoreSlots(6, pages); !errors.Is(err, fabric.ErrSlotRange) {
		t.Errorf("StoreSlots past the end = %v, want ErrSlotRange", err)
	}
	if err := r.StoreSlots(0, pages[:100]); !errors.Is(err, fabric.ErrBufferSize) {
		t.Errorf("StoreSlots of a partial page = %v, want ErrBufferSize", err)
	}
}
