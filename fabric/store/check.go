package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/vmemtrans/vmemtrans/fabric"
)

// RegionHealth describes one region directory as found on disk.
type RegionHealth struct {
	VM            string
	Slots         uint64 // from meta; 0 when meta is unreadable
	ResidentBytes uint64 // disk space the slots file uses
	Err           error  // nil for a healthy region; wraps ErrCorrupt otherwise
}

// Inspect reports the health of every region under dir without taking the
// store's lock or mapping anything, so it is safe while an agent runs.
func Inspect(dir string) ([]RegionHealth, error) {
	entries, err := os.ReadDir(filepath.Join(dir, regionsName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspect store %s: %w", dir, err)
	}
	var out []RegionHealth
	for _, e := range entries {
		if !e.IsDir() || ValidVMID(e.Name()) != nil {
			continue
		}
		h, present := inspectRegion(filepath.Join(dir, regionsName, e.Name()))
		if present {
			h.VM = e.Name()
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VM < out[j].VM })
	return out, nil
}

// Check reports the regions of the store that are corrupt.
func (s *Store) Check() ([]RegionHealth, error) {
	all, err := Inspect(s.dir)
	if err != nil {
		return nil, err
	}
	var bad []RegionHealth
	for _, h := range all {
		if h.Err != nil {
			bad = append(bad, h)
		}
	}
	return bad, nil
}

// inspectRegion checks one region directory; present is false for a
// directory that holds no region (an empty or abandoned creation).
func inspectRegion(dir string) (h RegionHealth, present bool) {
	meta, err := os.ReadFile(filepath.Join(dir, metaName))
	if errors.Is(err, fs.ErrNotExist) {
		if err := orphanSlots(dir, false); err != nil {
			h.ResidentBytes = fileBlocks(filepath.Join(dir, slotsName))
			h.Err = err
			return h, true
		}
		return h, false
	}
	if err != nil {
		h.Err = fmt.Errorf("read meta: %v: %w", err, ErrCorrupt)
		return h, true
	}
	hd, err := parseHeader(meta)
	if err != nil {
		h.Err = err
		return h, true
	}
	h.Slots = hd.slots
	st, err := os.Stat(filepath.Join(dir, slotsName))
	switch {
	case err != nil:
		h.Err = fmt.Errorf("slots file: %v: %w", err, ErrCorrupt)
	case st.Size() != int64(hd.slots)*fabric.PageSize:
		h.Err = fmt.Errorf("slots file is %d bytes, meta says %d: %w", st.Size(), int64(hd.slots)*fabric.PageSize, ErrCorrupt)
	}
	h.ResidentBytes = fileBlocks(filepath.Join(dir, slotsName))
	return h, true
}

// orphanSlots judges a region directory without meta. A slots file that
// holds no allocated block is the remains of a creation cut short (no page
// was ever written): no region, and remove (under the store lock) deletes it.
// One holding data is a corrupt region.
func orphanSlots(dir string, remove bool) error {
	path := filepath.Join(dir, slotsName)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if fileBlocks(path) == 0 {
		if !remove {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove empty slots file without meta: %w", err)
		}
		return nil
	}
	return fmt.Errorf("slots file holds pages but meta is missing (restore %s, or remove the region): %w",
		filepath.Join(dir, metaName), ErrCorrupt)
}

// fileBlocks is the disk space path uses, 0 if it cannot be told.
func fileBlocks(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, err := allocatedBytes(f)
	if err != nil {
		return 0
	}
	return n
}
