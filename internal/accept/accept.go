package accept

import (
	"errors"
	"net"
	"time"
)

// Pacing of retries: doubling from Min to Max.
const (
	Min = 5 * time.Millisecond
	Max = time.Second
)

// Backoff paces the retries of one accept loop. The zero value is ready.
type Backoff struct{ d time.Duration }

// Retry decides on an Accept error. It returns false when the listener is
// closed (the loop must end); otherwise it waits, longer each time in a
// row, or until done is closed, and returns true.
func (b *Backoff) Retry(err error, done <-chan struct{}) bool {
	if !b.next(err) {
		return false
	}
	b.wait(done)
	return true
}

// next decides on err and sets the pause without taking it, so a Group can
// report the pause before it starts.
func (b *Backoff) next(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	b.d = min(max(2*b.d, Min), Max)
	return true
}

func (b *Backoff) wait(done <-chan struct{}) {
	select {
	case <-time.After(b.d):
	case <-done:
	}
}

// Delay is the wait of the last retry.
func (b *Backoff) Delay() time.Duration { return b.d }

// Reset ends a run of failures, after a successful Accept.
func (b *Backoff) Reset() { b.d = 0 }
