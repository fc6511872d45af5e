package image

import "sync"

// progressMinRead is the read size from which a read counts as a scan's.
const progressMinRead = 1 << 20

// progress reports the highest address scans have reached, never going
// back (a second pass over memory reports nothing new).
type progress struct {
	mu     sync.Mutex
	done   uint64
	report func(done, total uint64)
}

func (p *progress) reached(addr, total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if addr <= p.done {
		return
	}
	p.done = min(addr, total)
	p.report(p.done, total)
}
