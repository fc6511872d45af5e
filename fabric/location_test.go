package fabric

import (
	"errors"
	"testing"
)

func TestWordFields(t *testing.T) {
	cases := []Location{
		{State: StateLocal},
		{State: StateLocal, Gen: GenMask},
		{State: StateRemote, SubHost: 255, Slot: MaxSlot, Gen: GenMask},
		{State: StateRemote, SubHost: 1, Slot: 12345, Gen: 7},
		{State: StateMoving, SubHost: 3, Slot: 1 << 35, Gen: 1},
	}
	for _, l := range cases {
		w, err := l.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", l, err)
		}
		if !w.Valid() || w.Decode() != l {
			t.Fatalf("Encode(%+v) = %v decodes to %+v", l, w, w.Decode())
		}
	}
	if LocalWord(0) != 0 {
		t.Fatalf("a zero map must mean local generation 0")
	}
	bad := []Location{
		{State: StateInvalid},
		{State: StateLocal, Slot: 1},
		{State: StateLocal, SubHost: 1},
		{State: StateRemote, Slot: MaxSlot + 1},
		{State: StateRemote, Gen: GenMask + 1},
	}
	for _, l := range bad {
		if _, err := l.Encode(); !errors.Is(err, ErrBadLocation) {
			t.Errorf("Encode(%+v): %v, want ErrBadLocation", l, err)
		}
	}
	if InvalidWord.Valid() {
		t.Fatal("InvalidWord is valid")
	}
	if _, err := RemoteWord(0, MaxSlot+1, 0); !errors.Is(err, ErrSlotRange) {
		t.Fatalf("RemoteWord beyond MaxSlot: %v", err)
	}
}

func TestWordMoves(t *testing.T) {
	w := LocalWord(GenMask - 1)
	out, err := w.MovingTo(4, 99)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := out.ToRemote(4, 99)
	if err != nil {
		t.Fatal(err)
	}
	in := remote.ToMoving()
	back := in.ToLocal()
	want := []string{"local@g262142", "moving:4/99@g262143", "remote:4/99@g0", "moving:4/99@g1", "local@g2"}
	for i, w := range []Word{w, out, remote, in, back} {
		if w.String() != want[i] {
			t.Errorf("step %d: %s, want %s", i, w, want[i])
		}
		if !w.Valid() {
			t.Errorf("step %d: %s not valid", i, w)
		}
	}
	seen := map[Word]bool{}
	for _, w := range []Word{w, out, remote, in, back} {
		if seen[w] {
			t.Fatalf("word %v repeats within one round trip", w)
		}
		seen[w] = true
	}
	if s := InvalidWord.String(); s != "invalid(0xffffffffffffffff)" {
		t.Errorf("InvalidWord renders as %s", s)
	}
}

func FuzzWordDecode(f *testing.F) {
	for _, w := range []uint64{0, 1, 2, 3, ^uint64(0), uint64(LocalWord(5)), 0x1234_5678_9abc_def1} {
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, x uint64) {
		w := Word(x)
		l := w.Decode()
		_ = w.String()
		enc, err := l.Encode()
		if w.Valid() {
			if err != nil || enc != w {
				t.Fatalf("valid word %#x: Encode(Decode) = %#x, %v", x, uint64(enc), err)
			}
		} else if err == nil {
			t.Fatalf("invalid word %#x (%+v) re-encoded without error", x, l)
		}
	})
}
