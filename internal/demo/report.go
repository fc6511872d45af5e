package demo

// RunResult is one pass of the IDS suite over the guest by one method.
type RunResult struct {
	Method             string  `json:"method"` // unsplit, proxy, self, adaptive
	Pass               string  `json:"pass"`   // first, repeated
	WallS              float64 `json:"wall_s"` // the whole suite: ps, lsmod, checks and scan
	ChecksS            float64 `json:"checks_s"`
	ScanS              float64 `json:"scan_s"`
	RemotePagesFetched uint64  `json:"remote_pages_fetched"`
	PagesExchanged     uint64  `json:"pages_exchanged"`
	CacheHits          uint64  `json:"cache_hits"`
	LocalPages         uint64  `json:"local_pages"`
	ResidentBefore     uint64  `json:"resident_pages_before"`
	ResidentAfter      uint64  `json:"resident_pages_after"`
	ResidentDelta      int64   `json:"resident_delta_pages"`
	SameAsUnsplit      bool    `json:"same_as_unsplit"`
	Diff               string  `json:"diff,omitempty"`
	Error              string  `json:"error,omitempty"`
}

// Findings summarises what the IDS suite found on the unsplit image, so a
// reader of the report sees what every method had to find again.
type Findings struct {
	Processes    int      `json:"processes"`
	Modules      int      `json:"modules"`
	SyscallHooks []string `json:"syscall_hooks"`
	HiddenTasks  []string `json:"hidden_tasks"`
	ScanMatches  int      `json:"scan_matches"`
}

// RuntimeSummary is the split-memory runtime's work over the whole demo.
type RuntimeSummary struct {
	BackedPages      uint64 `json:"backed_pages"`
	ResidentLimit    uint64 `json:"resident_limit_pages"`
	ResidentPages    uint64 `json:"resident_pages"`
	Faults           uint64 `json:"faults"`
	PageIns          uint64 `json:"page_ins"`
	PageOuts         uint64 `json:"page_outs"`
	ExchangeRequests uint64 `json:"exchange_requests"`
	WorkloadTouches  uint64 `json:"workload_touches"`
}

// Report is the outcome of a demo.
type Report struct {
	Image       string         `json:"image"`
	GuestMiB    uint64         `json:"guest_mib"`
	Subhosts    []string       `json:"subhosts"`
	ResidentPct int            `json:"resident_pct"`
	Transport   string         `json:"transport"`
	Findings    Findings       `json:"findings"`
	Runs        []RunResult    `json:"runs"`
	Runtime     RuntimeSummary `json:"runtime"`
	SplitS      float64        `json:"split_s"` // split-migrating the image onto the sub-hosts
	WallS       float64        `json:"wall_s"`
	// AllSame is true when every run's answers equal the unsplit image's.
	AllSame bool `json:"all_same"`
}

// Find returns the run of method and pass, or nil.
func (r *Report) Find(method, pass string) *RunResult {
	for i := range r.Runs {
		if r.Runs[i].Method == method && r.Runs[i].Pass == pass {
			return &r.Runs[i]
		}
	}
	return nil
}
