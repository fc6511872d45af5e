package linux

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestTextHash(t *testing.T) {
	k := newFake()
	base, err := HashText(k)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Pages) != fakeTextSize/4096 {
		t.Fatalf("%d page hashes, want %d", len(base.Pages), fakeTextSize/4096)
	}
	data, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := ParseTextBaseline(data)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := HashText(k)
	if ch, err := CompareText(loaded, now); err != nil || len(ch) != 0 {
		t.Fatalf("unchanged text: changes %v err %v", ch, err)
	}
	k.text[2*4096+17] ^= 0xcc // an inline hook on page 2
	now, _ = HashText(k)
	ch, err := CompareText(loaded, now)
	if err != nil || len(ch) != 1 || ch[0].Page != 2 || uint64(ch[0].Addr) != fakeTextBase+2*4096 || ch[0].Now == "" {
		t.Fatalf("changes %+v err %v; want page 2", ch, err)
	}
	// Unreadable now: reported as changed with an empty hash, and an error.
	k.holes = append(k.holes, [2]uint64{fakeTextBase + 4096, fakeTextBase + 4097})
	now, err = HashText(k)
	if !errors.Is(err, ErrUnreadable) {
		t.Errorf("err %v, want ErrUnreadable", err)
	}
	if ch, _ = CompareText(loaded, now); len(ch) != 2 || ch[0].Page != 1 || ch[0].Now != "" {
		t.Errorf("changes %+v; want pages 1 (unreadable) and 2", ch)
	}
	// Another boot: another text range.
	k.textBase += 0x200000
	now, _ = HashText(k)
	if _, err := CompareText(loaded, now); !errors.Is(err, ErrBaseline) {
		t.Errorf("err %v, want ErrBaseline", err)
	}
}

func TestTextHashUnalignedRange(t *testing.T) {
	k := newFake()
	k.textBase += 0x100
	k.text = k.text[:3*4096]
	b, err := HashText(k)
	if err != nil {
		t.Fatal(err)
	}
	// [base+0x100, base+0x3100) touches 4 pages.
	if len(b.Pages) != 4 || b.pageAddr(1) != fakeTextBase+4096 {
		t.Fatalf("%d pages, page 1 at %#x", len(b.Pages), b.pageAddr(1))
	}
	data, _ := json.Marshal(b)
	if _, err := ParseTextBaseline(data); err != nil {
		t.Fatal(err)
	}
}

func TestParseTextBaselineRejects(t *testing.T) {
	good := `{"version":1,"text_start":"0x1000","text_end":"0x3000","page_size":4096,"pages":["` +
		"00000000000000000000000000000000000000000000000000000000000000ff" + `",""]}`
	if _, err := ParseTextBaseline([]byte(good)); err != nil {
		t.Fatalf("good baseline: %v", err)
	}
	for name, in := range map[string]string{
		"not json":   `{`,
		"version":    `{"version":2,"text_start":"0x1000","text_end":"0x2000","page_size":4096,"pages":[""]}`,
		"page size":  `{"version":1,"text_start":"0x1000","text_end":"0x2000","page_size":512,"pages":[""]}`,
		"empty":      `{"version":1,"text_start":"0x2000","text_end":"0x2000","page_size":4096,"pages":[]}`,
		"count":      `{"version":1,"text_start":"0x1000","text_end":"0x3000","page_size":4096,"pages":[""]}`,
		"bad hash":   `{"version":1,"text_start":"0x1000","text_end":"0x2000","page_size":4096,"pages":["xyz"]}`,
		"short hash": `{"version":1,"text_start":"0x1000","text_end":"0x2000","page_size":4096,"pages":["00ff"]}`,
		"bad addr":   `{"version":1,"text_start":"0xzz","text_end":"0x2000","page_size":4096,"pages":[""]}`,
	} {
		if _, err := ParseTextBaseline([]byte(in)); !errors.Is(err, ErrBaseline) {
			t.Errorf("%s: err %v, want ErrBaseline", name, err)
		}
	}
}

func FuzzParseTextBaseline(f *testing.F) {
	k := newFake()
	b, _ := HashText(k)
	data, _ := json.Marshal(b)
	f.Add(data)
	f.Add([]byte(`{"version":1,"text_start":"0x1000","text_end":"0x3000","page_size":4096,"pages":["",""]}`))
	f.Add([]byte(`{"version":1,"text_start":1,"text_end":18446744073709551615,"page_size":4096}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseTextBaseline(data)
		if err != nil {
			if !errors.Is(err, ErrBaseline) {
				t.Fatalf("error %v does not wrap ErrBaseline", err)
			}
			return
		}
		holes := slices.Contains(b.Pages, "")
		if ch, err := CompareText(b, b); len(ch) != 0 || (err != nil) != holes || (holes && !errors.Is(err, ErrUnreadable)) {
			t.Fatalf("a valid baseline compared with itself: changes %v, err %v (unreadable pages: %v)", ch, err, holes)
		}
		for i := range b.Pages {
			_ = b.pageAddr(i)
		}
	})
}
