//go:build linux

package vmsock

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// countingBackend is a fake VM whose runtime keeps counters.
type countingBackend struct {
	*fakeBackend
	counters map[string]uint64
}

func (b countingBackend) Counters() map[string]uint64 { return b.counters }

// Version 2 hands out the runtime's counters; a backend without counters
// answers with an error that fails only that request; a version-1
// connection may not ask at all.
func TestStats(t *testing.T) {
	want := map[string]uint64{"page_ins_total": 7, "exchanged_pages_total": 3}
	_, path := startServer(t, countingBackend{newFakeBackend(t), want}, nil)
	c := dial(t, path)
	got, err := c.Counters(context.Background())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("counters %v %v, want %v", got, err, want)
	}

	_, plain := startServer(t, newFakeBackend(t), nil)
	c = dial(t, plain)
	if _, err := c.Counters(context.Background()); !errors.Is(err, ErrRuntime) {
		t.Fatalf("backend without counters: %v, want ErrRuntime", err)
	}
	ram, lm, err := c.Files(context.Background())
	if err != nil {
		t.Fatalf("the connection did not survive the refused request: %v", err)
	}
	ram.Close()
	lm.Close()

	raw := rawConn(t, path)
	raw.Write(append(hello(1, 1), buildFrame(TypeGetStats, 2, nil)...))
	closingError(t, readServerFrames(t, raw), CodeProtocol)
}
