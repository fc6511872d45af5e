package linux

import (
	"encoding/json"
	"fmt"
)

// moduleNameLen is MODULE_NAME_LEN on 64-bit kernels (64 - sizeof(long)).
const moduleNameLen = 56

// modMemTypes is MOD_MEM_NUM_TYPES of kernels 6.4+ (struct module.mem[]):
// text, data, rodata, ro_after_init, init_text, init_data, init_rodata.
const modMemTypes = 7

// Module is one loaded kernel module as lsmod shows it.
type Module struct {
	Addr Addr   `json:"module"` // struct module address
	Name string `json:"name"`
	Base Addr   `json:"base"` // start of the module's core (text) memory
	Size uint64 `json:"size"` // bytes of module memory, as /proc/modules
	// Ranges are the module's memory regions [start, end), used to name the
	// owner of an address.
	Ranges [][2]uint64 `json:"-"`
	Err    error       `json:"-"`
}

// MarshalJSON adds Err as an "error" string.
func (m Module) MarshalJSON() ([]byte, error) {
	type plain Module
	var e string
	if m.Err != nil {
		e = m.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(m), e})
}

// Contains tells whether addr lies in one of the module's regions.
func (m Module) Contains(addr uint64) bool {
	for _, r := range m.Ranges {
		if addr >= r[0] && addr < r[1] {
			return true
		}
	}
	return false
}

// moduleLayout covers both layouts of struct module: core_layout and
// init_layout (up to 6.3) and mem[MOD_MEM_NUM_TYPES] (6.4 on).
type moduleLayout struct {
	modules, list, name uint64
	// core_layout kernels
	coreBase, coreSize, initBase, initSize uint64
	// mem[] kernels
	memArray                       bool
	mem, memStride, memBase, memSz uint64
	span                           span
}

func resolveModuleLayout(t Target) (*moduleLayout, error) {
	l := layout{t: t}
	ml := &moduleLayout{
		modules: l.sym("modules"),
		list:    l.off("module", "list"),
		name:    l.off("module", "name"),
	}
	if l.err != nil {
		return nil, l.err
	}
	fields := [][2]uint64{{ml.list, 16}, {ml.name, moduleNameLen}}
	cb, e1 := t.Offset("module", "core_layout.base")
	cs, e2 := t.Offset("module", "core_layout.size")
	ib, e3 := t.Offset("module", "init_layout.base")
	is, e4 := t.Offset("module", "init_layout.size")
	if e1 == nil && e2 == nil && e3 == nil && e4 == nil {
		ml.coreBase, ml.coreSize, ml.initBase, ml.initSize = cb, cs, ib, is
		fields = append(fields, [2]uint64{cb, 8}, [2]uint64{cs, 4}, [2]uint64{ib, 8}, [2]uint64{is, 4})
	} else {
		ml.memArray = true
		ml.mem = l.off("module", "mem")
		ml.memStride = l.size("module_memory")
		ml.memBase = l.off("module_memory", "base")
		ml.memSz = l.off("module_memory", "size")
		if l.err != nil {
			return nil, fmt.Errorf("module memory layout (neither core_layout nor mem[]): %w", l.err)
		}
		fields = append(fields, [2]uint64{ml.mem, ml.memStride * modMemTypes})
	}
	ml.span = spanOf(fields...)
	return ml, nil
}

func (ml *moduleLayout) decode(addr uint64, buf []byte) Module {
	s := ml.span
	raw := s.bytes(buf, ml.name, moduleNameLen)
	m := Module{Addr: Addr(addr), Name: cstring(raw)}
	if !plausibleName(raw) {
		m.Err = fmt.Errorf("module %#x: name %q: %w", addr, m.Name, ErrGarbage)
	}
	add := func(base, size uint64) {
		m.Size += size
		if size > 0 && base+size > base {
			m.Ranges = append(m.Ranges, [2]uint64{base, base + size})
		}
	}
	if !ml.memArray {
		m.Base = Addr(s.u64(buf, ml.coreBase))
		add(uint64(m.Base), uint64(s.u32(buf, ml.coreSize)))
		add(s.u64(buf, ml.initBase), uint64(s.u32(buf, ml.initSize)))
		return m
	}
	for i := uint64(0); i < modMemTypes; i++ {
		e := ml.mem + i*ml.memStride
		base := s.u64(buf, e+ml.memBase)
		if i == 0 {
			m.Base = Addr(base)
		}
		add(base, uint64(s.u32(buf, e+ml.memSz)))
	}
	return m
}

// plausibleName: a NUL-terminated, non-empty run of printable ASCII.
func plausibleName(raw []byte) bool {
	for i, c := range raw {
		if c == 0 {
			return i > 0
		}
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return false
}

// Modules lists the modules on the kernel's modules list, in list order
// (most recently loaded first). On a torn, looping or over-long list it
// returns the modules found before the fault with an error.
func Modules(t Target, opt Options) ([]Module, error) {
	ml, err := resolveModuleLayout(t)
	if err != nil {
		return nil, err
	}
	res := walkLists(t, []listSpec{{head: ml.modules, linkOff: ml.list, span: ml.span}}, nil, opt.max())[0]
	out := make([]Module, 0, len(res.elems))
	for _, e := range res.elems {
		out = append(out, ml.decode(e.addr, e.buf))
	}
	if res.err != nil {
		return out, fmt.Errorf("module list: %w", res.err)
	}
	return out, nil
}
