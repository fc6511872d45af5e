package accept

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

func TestBackoff(t *testing.T) {
	var b Backoff
	if b.Retry(fmt.Errorf("accept: %w", net.ErrClosed), nil) {
		t.Fatal("a closed listener must end the loop")
	}
	done := make(chan struct{})
	close(done)
	var last = b.Delay()
	for range 12 {
		if !b.Retry(syscall.EMFILE, done) {
			t.Fatal("EMFILE must be retried")
		}
		if d := b.Delay(); d < last || d > Max || d < Min {
			t.Fatalf("delay %v after %v: want doubling within [%v, %v]", d, last, Min, Max)
		}
		last = b.Delay()
	}
	if last != Max {
		t.Fatalf("delay %v after 12 failures, want the cap %v", last, Max)
	}
	b.Reset()
	if b.Delay() != 0 || !b.Retry(errors.New("transient"), done) || b.Delay() != Min {
		t.Fatalf("after Reset the next delay is %v, want %v", b.Delay(), Min)
	}
}
