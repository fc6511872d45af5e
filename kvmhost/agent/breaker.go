package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// breaker decides whether the client asks the agent at all. It opens
// (distrust) on a silent or failed agent at once, on SlowStrikes slow
// answers or LieStrikes lying batches running; while open, requests fail
// at once with ErrAgentDown, until RetryAfter has passed, when one request
// probes the agent again: an answer in time closes it, anything else
// re-opens it. The first opening is a warning; later ones are reported at
// info level, so a bad agent is reported once, not per batch.
type breaker struct {
	mu      sync.Mutex
	log     zerolog.Logger
	name    string
	retry   time.Duration
	open    bool
	probing bool
	since   time.Time
	reason  string
	trips   uint64
	warned  bool
	slowRun int
	lieRun  int
}

func (b *breaker) init(cfg *ClientConfig) {
	b.log, b.name, b.retry = cfg.Log, cfg.Name, cfg.RetryAfter
}

func (b *breaker) state() (open bool, reason string, trips uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open, b.reason, b.trips
}

// allow returns nil when a request may go to the agent.
func (b *breaker) allow() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return nil
	}
	if b.retry > 0 && !b.probing && time.Since(b.since) >= b.retry {
		b.probing = true
		return nil
	}
	return fmt.Errorf("%w (%s)", ErrAgentDown, b.reason)
}

// trip opens the breaker for reason.
func (b *breaker) trip(reason string, cfg *ClientConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	b.since = time.Now()
	b.slowRun, b.lieRun = 0, 0
	if b.open {
		b.reason = reason
		return
	}
	b.open, b.reason = true, reason
	b.trips++
	ev := b.log.Info()
	if !b.warned {
		b.warned = true
		ev = b.log.Warn()
	}
	retry := "never"
	if b.retry > 0 {
		retry = b.retry.String()
	}
	ev.Str("agent", b.name).Str("reason", reason).Str("asking_again_after", retry).
		Msg("agent: not asking this agent any more; remote pages are read by proxy paging")
}

// answered records an answer in time: it closes the breaker after a probe.
func (b *breaker) answered() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slowRun = 0
	if b.open && b.probing {
		b.open, b.probing = false, false
		b.log.Info().Str("agent", b.name).Msg("agent: answering in time again; asking it again")
	}
}

func (b *breaker) slow(took time.Duration, cfg *ClientConfig) {
	b.mu.Lock()
	b.slowRun++
	n := b.slowRun
	probing := b.probing
	b.mu.Unlock()
	if n >= cfg.SlowStrikes || probing {
		b.trip(fmt.Sprintf("slow: %d answers running over %v (last %v)", n, cfg.SlowAfter, took.Round(time.Millisecond)), cfg)
	}
}

func (b *breaker) audit(done, unmoved int, cfg *ClientConfig) {
	b.mu.Lock()
	if 2*unmoved <= done {
		b.lieRun = 0
		b.mu.Unlock()
		return
	}
	b.lieRun++
	n := b.lieRun
	b.mu.Unlock()
	if n >= cfg.LieStrikes {
		b.trip(fmt.Sprintf("lying: %d of %d frames answered done had not moved, %d batches running", unmoved, done, n), cfg)
	}
}
