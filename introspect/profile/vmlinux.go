package profile

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"fmt"
)

// minKsymtabAgreement is the share of exported symbols whose kallsyms
// address must equal their __ksymtab address for the tables to be trusted.
const minKsymtabAgreement = 0.99

// FromVmlinux builds the profile of a vmlinux ELF image (stripped is fine).
func FromVmlinux(b []byte) (*Profile, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("vmlinux elf: %w: %w", ErrNotKernel, err)
	}
	ro := f.Section(".rodata")
	if ro == nil || ro.Addr%8 != 0 {
		return nil, fmt.Errorf("vmlinux without an aligned .rodata: %w", ErrNotKernel)
	}
	rodata, err := ro.Data()
	if err != nil {
		return nil, fmt.Errorf("read .rodata: %w", err)
	}
	ks, err := decodeKallsyms(rodata, ro.Addr)
	if err != nil {
		return nil, err
	}
	exported, err := readKsymtab(f)
	if err != nil {
		return nil, err
	}
	bs := f.Section(".BTF")
	if bs == nil {
		return nil, fmt.Errorf("vmlinux without a .BTF section: %w", ErrBTF)
	}
	raw, err := bs.Data()
	if err != nil {
		return nil, fmt.Errorf("read .BTF: %w", err)
	}
	byName := newSymIndex(ks.syms)
	release := ""
	if at, ok := byName.first("linux_banner"); ok {
		if b, ok := elfRead(f, at, 256); ok {
			release = parseBanner(b)
		}
	}
	parse := func() (*types, [sha256.Size]byte, error) { return parseBTF(raw) }
	return newProfile(release, ks.syms, byName, parse, func() error { return checkAgainstKsymtab(byName, exported) })
}

// checkAgainstKsymtab checks the decoded symbols against the export table
// (see ksymtabTally).
func checkAgainstKsymtab(byName *symIndex, exported map[string]uint64) error {
	var t ksymtabTally
	for name, want := range exported {
		t.add(byName.hasAt([]byte(name), want))
	}
	return t.err()
}

// ksymtabTally counts the exported names that kallsyms has and those that
// agree, any of their addresses (names repeat) being the exported one.
// Only the exported names are looked up, a tenth of the symbols.
type ksymtabTally struct{ checked, agree int }

func (t *ksymtabTally) add(named, agrees bool) {
	if named {
		t.checked++
	}
	if agrees {
		t.agree++
	}
}

func (t *ksymtabTally) err() error {
	if t.checked == 0 || float64(t.agree) < minKsymtabAgreement*float64(t.checked) {
		return fmt.Errorf("%d of %d exported symbols agree: %w", t.agree, t.checked, ErrMismatch)
	}
	return nil
}

// elfRead reads n bytes at virtual address va from the section holding it.
func elfRead(f *elf.File, va uint64, n int) ([]byte, bool) {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 || va < s.Addr || va >= s.Addr+s.Size {
			continue
		}
		if rest := s.Addr + s.Size - va; uint64(n) > rest {
			n = int(rest)
		}
		buf := make([]byte, n)
		if _, err := s.ReadAt(buf, int64(va-s.Addr)); err != nil {
			return nil, false
		}
		return buf, true
	}
	return nil, false
}

// parseBanner takes the release out of linux_banner:
// "Linux version 6.1.0-56-amd64 (debian-kernel@…) …".
func parseBanner(b []byte) string {
	const prefix = "Linux version "
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return ""
	}
	b = b[len(prefix):]
	if i := bytes.IndexAny(b, " \x00\n"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
