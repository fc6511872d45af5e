//go:build linux

package test

import (
	"context"
	"slices"
	"testing"

	"github.com/vmemtrans/vmemtrans/internal/demo"
)

// On a split VM, every IDS check and the scan give the unsplit image's
// answers through every method, on both committed guests: the rootkit of
// the attack guest is found through proxy, self and adaptive paging alike.
func TestIntegrationSplitTransparency(t *testing.T) {
	for _, name := range []string{"linux-6.1-clean", "linux-6.1-attack"} {
		t.Run(name, func(t *testing.T) {
			cfg := demo.DefaultConfig()
			cfg.Image = fixturePath(name, "memory.elf.zst")
			cfg.CacheBytes = 256 << 20
			rep, err := demo.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Runs) != 8 {
				t.Fatalf("%d runs, want unsplit, proxy, self and adaptive, twice each", len(rep.Runs))
			}
			for _, r := range rep.Runs {
				if !r.SameAsUnsplit {
					t.Errorf("%s %s pass differs from the unsplit image: %s %s", r.Method, r.Pass, r.Diff, r.Error)
				}
				if r.Method != "unsplit" && r.Pass == "first" && r.RemotePagesFetched+r.PagesExchanged == 0 {
					t.Errorf("%s first pass read nothing remote: is the VM split?", r.Method)
				}
			}
			f := rep.Findings
			attacked := f.HiddenTasks != nil
			if attacked != (name == "linux-6.1-attack") || (attacked && !slices.Equal(f.SyscallHooks, []string{"62 rkit"})) {
				t.Errorf("findings %+v on %s", f, name)
			}
			// Pages the workload moved since they were cached are fetched
			// again (how many depends on how long the passes take); the
			// cache serves the bulk.
			ad, ad1 := rep.Find("adaptive", "repeated"), rep.Find("adaptive", "first")
			if ad.CacheHits < 2*ad.RemotePagesFetched {
				t.Errorf("adaptive repeated pass fetched %d remote pages (first pass %d) with %d cache hits: the cache should serve most",
					ad.RemotePagesFetched, ad1.RemotePagesFetched, ad.CacheHits)
			}
			if p := rep.Find("proxy", "first"); p.PagesExchanged != 0 {
				t.Errorf("proxy paging exchanged %d pages: it must leave the VM alone", p.PagesExchanged)
			}
			if s := rep.Find("self", "first"); s.PagesExchanged == 0 {
				t.Errorf("self paging exchanged no pages")
			}
		})
	}
}
