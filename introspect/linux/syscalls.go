package linux

import (
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// DefaultSyscalls is __NR_syscalls of x86-64 Linux 6.1 (the last entry is
// 450, set_mempolicy_home_node). It is the table length used when neither
// Options.Syscalls nor the target (SymbolSizer) gives one.
const DefaultSyscalls = 451

// SymbolSizer is implemented by targets that know the size in bytes of a
// data symbol (from BTF or from the distance to the next kallsyms symbol).
type SymbolSizer interface {
	SymbolSize(name string) (uint64, error)
}

// SyscallHook is a sys_call_table entry that points outside kernel text.
type SyscallHook struct {
	NR     int    `json:"nr"`
	Target Addr   `json:"target"`
	Module string `json:"module,omitempty"` // module whose memory holds Target, if any
}

// SyscallReport is the outcome of CheckSyscalls.
type SyscallReport struct {
	Table     Addr          `json:"table"`
	Entries   int           `json:"entries"`
	TextStart Addr          `json:"text_start"`
	TextEnd   Addr          `json:"text_end"`
	Hooks     []SyscallHook `json:"hooks"`
}

// syscallCount picks the table length: explicit, from the target, or the
// 6.1 constant.
func syscallCount(t Target, opt Options) int {
	if opt.Syscalls > 0 {
		return opt.Syscalls
	}
	if s, ok := t.(SymbolSizer); ok {
		if n, err := s.SymbolSize("sys_call_table"); err == nil && n >= 8 && n%8 == 0 && n/8 <= 4096 {
			return int(n / 8)
		}
	}
	return DefaultSyscalls
}

// CheckSyscalls reads sys_call_table and reports every entry that does not
// point into kernel text [_stext, _etext), naming the module whose memory
// holds the target. Unreadable parts of the table are an error alongside
// the findings in the part that was read.
func CheckSyscalls(t Target, opt Options) (*SyscallReport, error) {
	l := layout{t: t}
	table := l.sym("sys_call_table")
	if l.err != nil {
		return nil, l.err
	}
	start, end, err := t.TextRange()
	if err != nil {
		return nil, fmt.Errorf("kernel text range: %w: %w", ErrLayout, err)
	}
	n := syscallCount(t, opt)
	rep := &SyscallReport{Table: Addr(table), Entries: n, TextStart: Addr(start), TextEnd: Addr(end), Hooks: []SyscallHook{}}
	batch := pageRanges(table, uint64(n)*8)
	readBatch(t, batch)
	var errs []error
	for _, r := range batch {
		if r.Err != nil {
			first := int((r.Addr - table) / 8)
			errs = append(errs, fmt.Errorf("sys_call_table entries %d..%d: %w", first, first+len(r.Buf)/8-1, rangeErr("table", r.Addr, r.Err)))
			continue
		}
		for i := 0; i+8 <= len(r.Buf); i += 8 {
			p := le.Uint64(r.Buf[i:])
			if p >= start && p < end {
				continue
			}
			rep.Hooks = append(rep.Hooks, SyscallHook{NR: int((r.Addr - table + uint64(i)) / 8), Target: Addr(p)})
		}
	}
	if len(rep.Hooks) > 0 {
		mods, merr := Modules(t, opt)
		if merr != nil {
			errs = append(errs, fmt.Errorf("owners of hooked entries: %w", merr))
		}
		for i := range rep.Hooks {
			for _, m := range mods {
				if m.Contains(uint64(rep.Hooks[i].Target)) {
					rep.Hooks[i].Module = m.Name
					break
				}
			}
		}
	}
	return rep, errors.Join(errs...)
}

// pageRanges splits [addr, addr+n) at page boundaries, so one unmapped page
// costs only its own entries.
func pageRanges(addr, n uint64) []physmem.Range {
	var out []physmem.Range
	for n > 0 {
		k := min(n, 4096-addr%4096)
		out = append(out, physmem.Range{Addr: addr, Buf: make([]byte, k)})
		addr, n = addr+k, n-k
	}
	return out
}
