package linux

import (
	"errors"
	"testing"
)

const modText = 0xffffffffc0000000

func TestModules(t *testing.T) {
	for _, memArray := range []bool{false, true} {
		k := newFake()
		if memArray {
			k.memArrayLayout()
		}
		addrs := k.modules([3]uint64{modText, 0x3000, 0x1000}, [3]uint64{modText + 0x10000, 0x2000, 0x800})
		got, err := Modules(k, Options{})
		if err != nil {
			t.Fatalf("memArray=%v: %v", memArray, err)
		}
		if len(got) != 2 {
			t.Fatalf("memArray=%v: got %d modules, want 2", memArray, len(got))
		}
		want := []struct {
			name string
			base uint64
			size uint64
		}{{"mod0", modText, 0x4000}, {"mod1", modText + 0x10000, 0x2800}}
		for i, m := range got {
			if m.Name != want[i].name || uint64(m.Base) != want[i].base || m.Size != want[i].size || uint64(m.Addr) != addrs[i] || m.Err != nil {
				t.Errorf("memArray=%v module %d: %+v, want %+v", memArray, i, m, want[i])
			}
		}
		if !got[0].Contains(modText+0x3fff) || got[0].Contains(modText+0x4000) || !got[1].Contains(modText+0x10000) {
			t.Errorf("memArray=%v: ranges %v %v", memArray, got[0].Ranges, got[1].Ranges)
		}
	}
}

func TestModulesGarbage(t *testing.T) {
	k := newFake()
	addrs := k.modules([3]uint64{modText, 0x1000, 0}, [3]uint64{modText + 0x1000, 0x1000, 0}, [3]uint64{modText + 0x2000, 0x1000, 0})
	k.wbytes(addrs[1]+k.o("module.name"), []byte("bad\x01name\x00"))
	got, err := Modules(k, Options{})
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d modules, err %v; want 3 and nil", len(got), err)
	}
	if !errors.Is(got[1].Err, ErrGarbage) || got[0].Err != nil || got[2].Err != nil {
		t.Errorf("errors %v %v %v; want only the middle one garbage", got[0].Err, got[1].Err, got[2].Err)
	}
	// A loop back to the first module.
	k.w64(addrs[2]+k.o("module.list"), addrs[0]+k.o("module.list"))
	if got, err = Modules(k, Options{}); !errors.Is(err, ErrCycle) || len(got) != 3 {
		t.Errorf("got %d, err %v; want 3 and ErrCycle", len(got), err)
	}
	// The bound.
	if got, err = Modules(k, Options{MaxObjects: 2}); !errors.Is(err, ErrLimit) || len(got) != 2 {
		t.Errorf("got %d, err %v; want 2 and ErrLimit", len(got), err)
	}
	// An unreadable head.
	k.holes = append(k.holes, [2]uint64{k.syms["modules"], k.syms["modules"] + 16})
	if _, err = Modules(k, Options{}); !errors.Is(err, ErrUnreadable) {
		t.Errorf("err %v, want ErrUnreadable", err)
	}
}

func TestModulesEmpty(t *testing.T) {
	k := newFake()
	k.modules()
	got, err := Modules(k, Options{})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no modules", got, err)
	}
}
