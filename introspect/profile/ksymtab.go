package profile

import (
	"bytes"
	"debug/elf"
	"fmt"
)

// readKsymtab returns the exported symbols of a vmlinux: __ksymtab and
// __ksymtab_gpl entries are struct kernel_symbol with PREL32 fields
// {int value_offset, name_offset, namespace_offset}; a field's target is its
// own address plus its value.
func readKsymtab(f *elf.File) (map[string]uint64, error) {
	strs := f.Section("__ksymtab_strings")
	if strs == nil {
		return nil, fmt.Errorf("no __ksymtab_strings section: %w", ErrNotKernel)
	}
	sd, err := strs.Data()
	if err != nil {
		return nil, fmt.Errorf("read __ksymtab_strings: %w", err)
	}
	out := make(map[string]uint64)
	for _, name := range []string{"__ksymtab", "__ksymtab_gpl"} {
		s := f.Section(name)
		if s == nil {
			continue
		}
		d, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		for i := 0; i+12 <= len(d); i += 12 {
			ent := s.Addr + uint64(i)
			val := ent + uint64(int64(int32(le.Uint32(d[i:]))))
			nva := ent + 4 + uint64(int64(int32(le.Uint32(d[i+4:]))))
			if nva < strs.Addr || nva >= strs.Addr+uint64(len(sd)) {
				continue
			}
			n := sd[nva-strs.Addr:]
			j := bytes.IndexByte(n, 0)
			if j <= 0 {
				continue
			}
			out[string(n[:j])] = val
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty ksymtab: %w", ErrNotKernel)
	}
	return out, nil
}
