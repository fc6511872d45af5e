package linux

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmemtrans/vmemtrans/introspect/physmem"
)

// textPage is the granule of the kernel text hash.
const textPage = 4096

// textBatchPages is how many text pages one ReadVirt batch carries.
const textBatchPages = 256

// textBaselineVersion is the format version of TextBaseline.
const textBaselineVersion = 1

// TextBaseline is the SHA-256 of every kernel text page of one boot.
// KASLR relocations and boot-time patching (alternatives, static keys) make
// text differ between boots, so a baseline is only valid for the boot it was
// recorded on: CompareText refuses one whose text range differs.
type TextBaseline struct {
	Version  int      `json:"version"`
	Start    Addr     `json:"text_start"`
	End      Addr     `json:"text_end"`
	PageSize int      `json:"page_size"`
	Pages    []string `json:"pages"` // hex SHA-256 per page; "" where unreadable
}

// TextChange is one kernel text page whose hash differs from the baseline.
type TextChange struct {
	Page int    `json:"page"`
	Addr Addr   `json:"addr"`
	Was  string `json:"was"`
	Now  string `json:"now"` // "" when the page could not be read now
}

// HashText hashes kernel text [_stext, _etext) page by page. Unreadable pages
// get an empty hash and are named in the returned error.
func HashText(t Target) (*TextBaseline, error) {
	start, end, err := t.TextRange()
	if err != nil {
		return nil, fmt.Errorf("kernel text range: %w: %w", ErrLayout, err)
	}
	if end <= start || end-start > 1<<30 {
		return nil, fmt.Errorf("kernel text range [%#x, %#x): %w", start, end, ErrGarbage)
	}
	b := &TextBaseline{Version: textBaselineVersion, Start: Addr(start), End: Addr(end), PageSize: textPage}
	var errs []error
	for addr := start; addr < end; {
		var batch []physmem.Range
		for len(batch) < textBatchPages && addr < end {
			n := min(end-addr, textPage-addr%textPage)
			batch = append(batch, physmem.Range{Addr: addr, Buf: make([]byte, n)})
			addr += n
		}
		readBatch(t, batch)
		for _, r := range batch {
			if r.Err != nil {
				errs = append(errs, rangeErr("kernel text page", r.Addr, r.Err))
				b.Pages = append(b.Pages, "")
				continue
			}
			sum := sha256.Sum256(r.Buf)
			b.Pages = append(b.Pages, hex.EncodeToString(sum[:]))
		}
	}
	return b, errors.Join(errs...)
}

// pageAddr is the address of page i of the baseline's text (the first page
// may start unaligned).
func (b *TextBaseline) pageAddr(i int) uint64 {
	if i == 0 {
		return uint64(b.Start)
	}
	return uint64(b.Start)&^(textPage-1) + uint64(i)*textPage
}

// pageCount is how many pages [Start, End) spans.
func pageCount(start, end uint64) int {
	if end <= start {
		return 0
	}
	return int((end+textPage-1)/textPage - start/textPage)
}

// ParseTextBaseline decodes and validates a baseline file.
func ParseTextBaseline(data []byte) (*TextBaseline, error) {
	var b TextBaseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBaseline, err)
	}
	if b.Version != textBaselineVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBaseline, b.Version, textBaselineVersion)
	}
	if b.PageSize != textPage {
		return nil, fmt.Errorf("%w: page size %d, want %d", ErrBaseline, b.PageSize, textPage)
	}
	if b.End <= b.Start || b.End-b.Start > 1<<30 {
		return nil, fmt.Errorf("%w: text range [%s, %s)", ErrBaseline, b.Start, b.End)
	}
	if want := pageCount(uint64(b.Start), uint64(b.End)); len(b.Pages) != want {
		return nil, fmt.Errorf("%w: %d page hashes for %d pages", ErrBaseline, len(b.Pages), want)
	}
	for i, h := range b.Pages {
		if h == "" {
			continue
		}
		if d, err := hex.DecodeString(h); err != nil || len(d) != sha256.Size {
			return nil, fmt.Errorf("%w: page %d hash %q is not a hex SHA-256", ErrBaseline, i, h)
		}
	}
	return &b, nil
}

// CompareText lists the pages whose hash changed between base and now, in
// page order. A page unreadable now is a change (Now ""). Pages unreadable
// in the baseline cannot be compared: they are listed in an ErrUnreadable
// error returned with the changes, so an incomplete comparison is never
// mistaken for a clean one. A baseline of another text range (another boot
// or kernel) is an ErrBaseline.
func CompareText(base, now *TextBaseline) ([]TextChange, error) {
	if base.Start != now.Start || base.End != now.End || len(base.Pages) != len(now.Pages) {
		return nil, fmt.Errorf("%w: baseline covers [%s, %s), kernel text is [%s, %s): recorded on another boot?",
			ErrBaseline, base.Start, base.End, now.Start, now.End)
	}
	changes := []TextChange{}
	var uncompared []int
	for i := range base.Pages {
		if base.Pages[i] == "" {
			uncompared = append(uncompared, i)
			continue
		}
		if base.Pages[i] == now.Pages[i] {
			continue
		}
		changes = append(changes, TextChange{Page: i, Addr: Addr(base.pageAddr(i)), Was: base.Pages[i], Now: now.Pages[i]})
	}
	if len(uncompared) > 0 {
		return changes, fmt.Errorf("%d kernel text pages not compared (first page %d at %#x): unreadable when the baseline was recorded: %w",
			len(uncompared), uncompared[0], base.pageAddr(uncompared[0]), ErrUnreadable)
	}
	return changes, nil
}
