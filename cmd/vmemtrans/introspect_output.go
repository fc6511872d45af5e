package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// exitFindings is the exit status of a check that found something, so
// scripts can tell "found" (2) from "failed" (1) and "clean" (0).
const exitFindings = 2

// printJSON writes v indented to w.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...any) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cols ...any) {
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// exitCode is a check's exit status: 2 when it found something (even if
// part of the check failed), 1 when a read or step it depends on failed
// ("could not check": never reported as clean), 0 when clean.
func exitCode(found bool, err error) int {
	switch {
	case found:
		return exitFindings
	case err != nil:
		return 1
	}
	return 0
}

// finish ends a check command: exit 2 when it found something, otherwise
// return err (main exits 1 on it). The exit happens in main, once the
// command has returned: its deferred closes (a paused guest resumes) and
// the profile's flush run first.
func finish(found bool, err error) error {
	if exitCode(found, err) == exitFindings {
		return &foundError{err: err}
	}
	return err
}

// foundError carries a command's findings verdict (exit 2) to main, with
// an error to print if reading was also incomplete.
type foundError struct{ err error }

func (e *foundError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return "findings reported"
}

func (e *foundError) Unwrap() error { return e.err }
