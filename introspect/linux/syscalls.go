package linux

import (
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// DefaultSyscalls is __NR_syscalls of x86-64 Linux 6.1 (the last entry is
// 450, set_mempolicy_home_node). It is the table length used when neither
// Options.Syscalls nor the target (SymbolLookup) gives one.
const DefaultSyscalls = 451

// SymbolLookup is implemented by targets that name the symbol containing an
// address (kallsyms); the table then ends where the next symbol starts.
type SymbolLookup interface {
	Lookup(addr uint64) (name string, off uint64, ok bool)
}

// maxSyscalls bounds a table length taken from the target.
const maxSyscalls = 4096

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

// syscallCount picks the table length: explicit, the distance to the next
// symbol, or the 6.1 constant. padded says the length may include alignment
// padding after the table (the distance method).
func syscallCount(t Target, table uint64, opt Options) (n int, padded bool) {
	if opt.Syscalls > 0 {
		return opt.Syscalls, false
	}
	if l, ok := t.(SymbolLookup); ok {
		n := 0
		for ; n < maxSyscalls; n++ {
			name, _, ok := l.Lookup(table + uint64(n)*8)
			if !ok || name != "sys_call_table" {
				break
			}
		}
		if n > 0 && n < maxSyscalls {
			return n, true
		}
	}
	return DefaultSyscalls, false
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
	n, padded := syscallCount(t, table, opt)
	batch := pageRanges(table, uint64(n)*8)
	readBatch(t, batch)
	if padded {
		n, batch = trimPadding(batch, n)
	}
	rep := &SyscallReport{Table: Addr(table), Entries: n, TextStart: Addr(start), TextEnd: Addr(end), Hooks: []SyscallHook{}}
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

// trimPadding drops the zero entries that end a table whose length was the
// distance to the next symbol: alignment padding, not table. Every real
// entry holds a handler (sys_ni_syscall at least), never zero.
func trimPadding(batch []physmem.Range, n int) (int, []physmem.Range) {
	for len(batch) > 0 {
		last := &batch[len(batch)-1]
		if last.Err != nil {
			break
		}
		for len(last.Buf) >= 8 && le.Uint64(last.Buf[len(last.Buf)-8:]) == 0 {
			last.Buf = last.Buf[:len(last.Buf)-8]
			n--
		}
		if len(last.Buf) > 0 {
			break
		}
		batch = batch[:len(batch)-1]
	}
	return n, batch
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
