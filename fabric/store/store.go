package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/vmemtrans/vmemtrans/fabric"
)

const (
	lockName    = "lock"
	regionsName = "regions"
	metaName    = "meta"
	slotsName   = "slots"
)

// Store is a state directory holding one region per VM.
type Store struct {
	dir  string
	lock *os.File

	mu      sync.Mutex
	regions map[string]*Region
	closed  bool
}

// Open opens (creating if needed) the store in dir and takes its lock, so
// that two agents never share one directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, regionsName), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return &Store{dir: dir, lock: lock, regions: make(map[string]*Region)}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Region returns the region of vm, opening it if it exists and creating a
// zero-filled one of the given slot count otherwise. slots == 0 opens an
// existing region of any size (and fails with ErrNoRegion if there is none);
// a non-zero count that differs from the existing region's fails with
// ErrSizeMismatch.
func (s *Store) Region(vm string, slots uint64) (*Region, error) {
	if err := ValidVMID(vm); err != nil {
		return nil, err
	}
	if slots > MaxSlots {
		return nil, fmt.Errorf("region %s of %d slots (max %d): %w", vm, slots, uint64(MaxSlots), ErrBadSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("region %s: store: %w", vm, fabric.ErrClosed)
	}
	r, err := s.openLocked(vm)
	if errors.Is(err, ErrNoRegion) && slots != 0 {
		r, err = s.createLocked(vm, slots)
	}
	if err != nil {
		return nil, err
	}
	if slots != 0 && r.slots != slots {
		return nil, fmt.Errorf("region %s has %d slots, asked for %d: %w", vm, r.slots, slots, ErrSizeMismatch)
	}
	return r, nil
}

// Lookup returns the existing region of vm; the error wraps ErrNoRegion if
// there is none.
func (s *Store) Lookup(vm string) (*Region, error) {
	return s.Region(vm, 0)
}

// List returns the VM ids of every region in the store, open or not, sorted.
func (s *Store) List() []string {
	entries, err := os.ReadDir(filepath.Join(s.dir, regionsName))
	if err != nil {
		return nil
	}
	var vms []string
	for _, e := range entries {
		if !e.IsDir() || ValidVMID(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.dir, regionsName, e.Name(), metaName)); err == nil {
			vms = append(vms, e.Name())
		}
	}
	sort.Strings(vms)
	return vms
}

// Remove unmaps and deletes the region of vm and everything it holds,
// corrupt regions included.
func (s *Store) Remove(vm string) error {
	if err := ValidVMID(vm); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("remove region %s: store: %w", vm, fabric.ErrClosed)
	}
	dir := s.regionDir(vm)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove region %s: %w", vm, ErrNoRegion)
	}
	if r := s.regions[vm]; r != nil {
		delete(s.regions, vm)
		if err := r.close(); err != nil {
			return fmt.Errorf("remove region %s: %w", vm, err)
		}
	}
	// The meta file goes first so that a crash part-way leaves no region.
	if err := os.Remove(filepath.Join(dir, metaName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove region %s: %w", vm, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove region %s: %w", vm, err)
	}
	return nil
}

// Close unmaps every region and releases the directory lock. Slices handed
// out by regions must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for vm, r := range s.regions {
		if err := r.close(); err != nil {
			errs = append(errs, fmt.Errorf("close region %s: %w", vm, err))
		}
	}
	s.regions = nil
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

func (s *Store) regionDir(vm string) string {
	return filepath.Join(s.dir, regionsName, vm)
}

// openLocked returns the open region of vm or maps it from disk.
func (s *Store) openLocked(vm string) (*Region, error) {
	if r := s.regions[vm]; r != nil {
		return r, nil
	}
	dir := s.regionDir(vm)
	meta, err := os.ReadFile(filepath.Join(dir, metaName))
	if errors.Is(err, fs.ErrNotExist) {
		// Slots without meta hold pages nobody can size any more: a
		// corrupt region an operator must look at, never one to recreate
		// (that would truncate the pages away).
		if err := orphanSlots(dir, true); err != nil {
			return nil, fmt.Errorf("region %s: %w", vm, err)
		}
		return nil, fmt.Errorf("region %s: %w", vm, ErrNoRegion)
	}
	if err != nil {
		return nil, fmt.Errorf("region %s: read meta: %w", vm, err)
	}
	h, err := parseHeader(meta)
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", vm, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, slotsName), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("region %s: slots file missing: %w", vm, ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", vm, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("region %s: %w", vm, err)
	}
	if want := int64(h.slots) * fabric.PageSize; st.Size() != want {
		f.Close()
		return nil, fmt.Errorf("region %s: slots file is %d bytes, meta says %d: %w", vm, st.Size(), want, ErrCorrupt)
	}
	return s.mapLocked(vm, f, h.slots)
}

// createLocked makes a new zero-filled (sparse) region. The meta file is
// renamed into place last: until then the region does not exist.
func (s *Store) createLocked(vm string, slots uint64) (*Region, error) {
	dir := s.regionDir(vm)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create region %s: %w", vm, err)
	}
	// O_EXCL: creation never reuses (and so never truncates) a slots file.
	f, err := os.OpenFile(filepath.Join(dir, slotsName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create region %s: %w", vm, err)
	}
	if err := f.Truncate(int64(slots) * fabric.PageSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("create region %s: size slots file: %w", vm, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, metaName), header{slots: slots}.marshal()); err != nil {
		f.Close()
		return nil, fmt.Errorf("create region %s: %w", vm, err)
	}
	return s.mapLocked(vm, f, slots)
}

func (s *Store) mapLocked(vm string, f *os.File, slots uint64) (*Region, error) {
	mem, err := mapShared(f, int(slots*fabric.PageSize))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("region %s: %w", vm, err)
	}
	r := &Region{vm: vm, slots: slots, file: f, mem: mem}
	s.regions[vm] = r
	return r, nil
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// over path, then syncs the directory so the rename itself is durable.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	return nil
}
