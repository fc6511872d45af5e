package profile

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// types answers layout questions from a kernel's BTF.
type types struct {
	spec  *btf.Spec
	mu    sync.Mutex
	named map[string]btf.Type
}

// loadTypes parses a raw BTF blob (the .BTF section, or the same bytes in
// guest memory, which may be lent: the library keeps its own copy). The
// blob goes to the library as the section of a minimal ELF (btfELF), which
// it copies once.
func loadTypes(raw []byte) (*types, error) {
	spec, err := btf.LoadSpecFromReader(newBTFELF(raw))
	if err != nil {
		return nil, fmt.Errorf("parse btf: %w: %w", ErrBTF, err)
	}
	return &types{spec: spec, named: make(map[string]btf.Type)}, nil
}

// lookup returns the definition named name: a complete struct or union if
// there is one (forward declarations share the name), else any other type.
func (t *types) lookup(name string) (btf.Type, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ty, ok := t.named[name]; ok {
		return ty, nil
	}
	all, err := t.spec.AnyTypesByName(name)
	if err != nil {
		return nil, fmt.Errorf("type %s: %w", name, ErrNoType)
	}
	var best btf.Type
	for _, ty := range all {
		switch v := ty.(type) {
		case *btf.Struct:
			if v.Size > 0 && best == nil {
				best = v
			}
		case *btf.Union:
			if v.Size > 0 && best == nil {
				best = v
			}
		case *btf.Fwd:
		}
	}
	if best == nil {
		for _, ty := range all {
			if _, fwd := ty.(*btf.Fwd); !fwd {
				best = ty
				break
			}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("type %s has only forward declarations: %w", name, ErrNoType)
	}
	t.named[name] = best
	return best, nil
}

func (t *types) size(name string) (uint64, error) {
	ty, err := t.lookup(name)
	if err != nil {
		return 0, err
	}
	n, err := btf.Sizeof(ty)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w: %w", name, ErrNoType, err)
	}
	return uint64(n), nil
}

// offset resolves a dotted member path ("signal.pids", "pid_links[1].next")
// in struct or union typ, searching anonymous members on the way.
func (t *types) offset(typ, path string) (uint64, error) {
	ty, err := t.lookup(typ)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, part := range strings.Split(path, ".") {
		name, idx, err := splitIndex(part)
		if err != nil {
			return 0, fmt.Errorf("member %s.%s: %w", typ, path, err)
		}
		off, mt, ok := findMember(ty, name, 0)
		if !ok {
			return 0, fmt.Errorf("member %s.%s: %w", typ, path, ErrNoMember)
		}
		if off%8 != 0 {
			return 0, fmt.Errorf("member %s.%s is a bitfield: %w", typ, path, ErrNoMember)
		}
		total += off / 8
		ty = btf.UnderlyingType(mt)
		if idx >= 0 {
			arr, isArr := ty.(*btf.Array)
			if !isArr || uint64(idx) >= uint64(arr.Nelems) {
				return 0, fmt.Errorf("member %s.%s: index %d out of range: %w", typ, path, idx, ErrNoMember)
			}
			es, err := btf.Sizeof(arr.Type)
			if err != nil {
				return 0, fmt.Errorf("member %s.%s element size: %w: %w", typ, path, ErrNoMember, err)
			}
			total += uint64(idx) * uint64(es)
			ty = btf.UnderlyingType(arr.Type)
		}
	}
	return total, nil
}

// findMember returns the bit offset and type of member name in ty,
// descending into anonymous structs and unions.
func findMember(ty btf.Type, name string, depth int) (uint64, btf.Type, bool) {
	if depth > 16 {
		return 0, nil, false
	}
	var ms []btf.Member
	switch s := btf.UnderlyingType(ty).(type) {
	case *btf.Struct:
		ms = s.Members
	case *btf.Union:
		ms = s.Members
	default:
		return 0, nil, false
	}
	for _, m := range ms {
		if m.Name == name {
			return uint64(m.Offset), m.Type, true
		}
	}
	for _, m := range ms {
		if m.Name == "" {
			if o, t, ok := findMember(m.Type, name, depth+1); ok {
				return uint64(m.Offset) + o, t, true
			}
		}
	}
	return 0, nil, false
}

var errBadPath = fmt.Errorf("malformed member path: %w", ErrNoMember)

func splitIndex(part string) (string, int, error) {
	open := strings.IndexByte(part, '[')
	if open < 0 {
		if part == "" {
			return "", 0, errBadPath
		}
		return part, -1, nil
	}
	if open == 0 || !strings.HasSuffix(part, "]") {
		return "", 0, errBadPath
	}
	n, err := strconv.Atoi(part[open+1 : len(part)-1])
	if err != nil || n < 0 {
		return "", 0, errBadPath
	}
	return part[:open], n, nil
}
