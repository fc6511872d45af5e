package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/source"
)

func TestSourceFlagsRejected(t *testing.T) {
	for name, f := range map[string]sourceFlags{
		"none":              {},
		"image and qmp":     {image: "x", qmp: "q", memPath: "m"},
		"qmp alone":         {qmp: "q"},
		"mem-path alone":    {memPath: "m"},
		"pause on an image": {image: "x", pause: true},
	} {
		if _, err := f.open(context.Background()); !errors.Is(err, source.ErrSpec) {
			t.Errorf("%s: err %v, want source.ErrSpec", name, err)
		}
	}
}

func TestSourceMissingImage(t *testing.T) {
	f := sourceFlags{image: filepath.Join(t.TempDir(), "absent.elf")}
	if _, err := f.open(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err %v, want a not-exist error", err)
	}
}

func TestErrorList(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	got := errorList(errors.Join(a, fmt.Errorf("wrapped: %w", errors.Join(b, c))))
	// A wrapped join keeps its own message; a bare join is flattened.
	if len(got) != 2 || got[0] != "a" || got[1] != "wrapped: b\nc" {
		t.Errorf("errorList %q", got)
	}
	if errorList(nil) != nil {
		t.Error("errorList(nil) not nil")
	}
}
