package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/linux"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/scan"
)

// scanMatch is one match as the scan command prints it.
type scanMatch struct {
	Addr    linux.Addr    `json:"addr"`
	Pattern string        `json:"pattern"`
	Owners  []linux.Owner `json:"owners,omitempty"`
}

// scanReport is the scan command's --json output.
type scanReport struct {
	Matches   []scanMatch `json:"matches"`
	BytesRead uint64      `json:"bytes_read"`
	// ScanS is the wall time of reading and searching memory (owners of
	// matches excluded); the page counts are what a split VM's reader did
	// meanwhile.
	ScanS              float64          `json:"scan_s"`
	InPlace            bool             `json:"in_place"` // memory searched where it lies, not copied out
	LocalPages         uint64           `json:"local_pages,omitempty"`
	RemotePagesFetched uint64           `json:"remote_pages_fetched,omitempty"`
	CacheHits          uint64           `json:"cache_hits,omitempty"`
	Complete           bool             `json:"complete"`
	Unreadable         []scanUnreadable `json:"unreadable,omitempty"`
	OwnersErr          string           `json:"owners_error,omitempty"`
}

type scanUnreadable struct {
	Addr  linux.Addr `json:"addr"`
	Len   uint64     `json:"len"`
	Error string     `json:"error"`
}

func init() {
	var src sourceFlags
	var hexPatterns, strPatterns []string
	var limit int
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan all guest memory for byte signatures",
		Long: `Read all guest physical memory in large batches and report every
occurrence of the given signatures by guest-physical address, with the
processes that map it and at which virtual address.

Exits 0 when nothing matched, 2 when something did, 1 when some memory could
not be read (the scan is then incomplete and says where).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			patterns, names, err := scanPatterns(hexPatterns, strPatterns)
			if err != nil {
				return err
			}
			s, err := src.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			rep, scanErr := runScan(s, patterns, names, limit)
			if jsonOutput {
				if err := printJSON(os.Stdout, rep); err != nil {
					return err
				}
			} else {
				t := newTable(os.Stdout, "ADDR", "PATTERN", "PID", "COMM", "VA")
				for _, m := range rep.Matches {
					if len(m.Owners) == 0 {
						t.row(m.Addr, m.Pattern, "-", "-", "-")
					}
					for _, o := range m.Owners {
						t.row(m.Addr, m.Pattern, o.PID, o.Comm, o.VA)
					}
				}
				if err := t.flush(); err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "scanned %d MiB, %d matches\n", rep.BytesRead>>20, len(rep.Matches))
			}
			if scanErr != nil {
				return fmt.Errorf("could not check all memory: %w", scanErr)
			}
			return finish(len(rep.Matches) > 0, nil)
		},
	}
	src.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&hexPatterns, "pattern", nil, "signature as hex bytes (repeatable), e.g. deadbeef")
	fl.StringArrayVar(&strPatterns, "string", nil, "signature as text (repeatable)")
	fl.IntVar(&limit, "limit", 0, "stop after this many matches (0: no limit)")
	rootCmd.AddCommand(cmd)
}

// scanPatterns decodes the signature flags; names are how output shows them.
func scanPatterns(hexes, strs []string) (patterns [][]byte, names []string, err error) {
	for _, h := range hexes {
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimPrefix(h, "0x"), " ", ""))
		if err != nil || len(b) == 0 {
			return nil, nil, fmt.Errorf("--pattern %q: want hex bytes such as deadbeef", h)
		}
		patterns, names = append(patterns, b), append(names, "hex:"+hex.EncodeToString(b))
	}
	for _, s := range strs {
		if s == "" {
			return nil, nil, errors.New("--string: empty signature")
		}
		patterns, names = append(patterns, []byte(s)), append(names, s)
	}
	if len(patterns) == 0 {
		return nil, nil, errors.New("give at least one --pattern HEX or --string TEXT")
	}
	return patterns, names, nil
}

// runScan scans the session's memory and finds the owners of the matches.
func runScan(s *session, patterns [][]byte, names []string, limit int) (*scanReport, error) {
	r := s.src.Kernel.Reader()
	stats, _ := r.(interface{ Stats() fabric.MemoryStats })
	var before fabric.MemoryStats
	if stats != nil {
		before = stats.Stats()
	}
	start := time.Now()
	res, scanErr := scan.Memory(r, patterns, scan.Options{Limit: limit, Progress: progressBar("scan")})
	_, inPlace := r.(physmem.Lender)
	rep := &scanReport{Matches: []scanMatch{}, BytesRead: res.BytesRead, Complete: scanErr == nil, ScanS: time.Since(start).Seconds(), InPlace: inPlace}
	if stats != nil {
		after := stats.Stats()
		rep.LocalPages = after.LocalPages - before.LocalPages
		rep.RemotePagesFetched = after.RemotePagesFetched - before.RemotePagesFetched
		rep.CacheHits = after.CacheHits - before.CacheHits
	}
	for _, u := range res.Unreadable {
		rep.Unreadable = append(rep.Unreadable, scanUnreadable{Addr: linux.Addr(u.Addr), Len: u.Len, Error: u.Cause.Error()})
	}
	var owners map[uint64][]linux.Owner
	if len(res.Matches) > 0 {
		addrs := make([]uint64, len(res.Matches))
		for i, m := range res.Matches {
			addrs[i] = m.Addr
		}
		tasks, terr := linux.Tasks(s.target, linux.Options{})
		var oerr error
		owners, oerr = linux.MapOwners(s.target, tasks, addrs, linux.Options{})
		if err := errors.Join(terr, oerr); err != nil {
			rep.OwnersErr = err.Error()
		}
	}
	for _, m := range res.Matches {
		rep.Matches = append(rep.Matches, scanMatch{Addr: linux.Addr(m.Addr), Pattern: names[m.Pattern], Owners: owners[m.Addr]})
	}
	return rep, scanErr
}
