package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
)

// checkCmd groups the IDS checks. Each exits 0 when clean, 2 when it found
// something (findings printed first), 1 when it could not check.
var checkCmd = &cobra.Command{
	Use:   "check",
	Short: "Integrity checks of the guest kernel (exit 2 on findings)",
}

func init() {
	rootCmd.AddCommand(checkCmd)
	addCheck("syscalls", "Check that every sys_call_table entry points into kernel text", nil, checkSyscalls)
	var record, baseline string
	addCheck("kernel-text", "Hash kernel text pages: record a baseline, or compare with one",
		func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&record, "record", "", "write the text page hashes to FILE (a baseline for this boot)")
			cmd.Flags().StringVar(&baseline, "baseline", "", "compare with the baseline in FILE (recorded on the same boot)")
			cmd.Long = `Hash every kernel text page (SHA-256) and either record the hashes
(--record FILE) or compare them with a baseline (--baseline FILE), reporting
the pages that changed. KASLR and boot-time patching make text differ between
boots: a baseline is valid for the boot it was recorded on only.`
		},
		func(ctx context.Context, s *session, opt linux.Options) (bool, error) {
			return checkText(s, record, baseline)
		})
	addCheck("hidden-tasks", "Find tasks that own a PID but are missing from the task list", nil, checkHidden)
}

type checkFunc func(ctx context.Context, s *session, opt linux.Options) (found bool, err error)

func addCheck(name, short string, setup func(*cobra.Command), run checkFunc) {
	var src sourceFlags
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			found, err := func() (bool, error) {
				s, err := src.open(cmd.Context())
				if err != nil {
					return false, err
				}
				defer s.Close()
				return run(cmd.Context(), s, src.options())
			}()
			return finish(found, err)
		},
	}
	src.register(cmd)
	if setup != nil {
		setup(cmd)
	}
	checkCmd.AddCommand(cmd)
}

// errorList flattens joined errors into messages for JSON reports.
func errorList(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorList(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func checkSyscalls(_ context.Context, s *session, opt linux.Options) (bool, error) {
	rep, err := linux.CheckSyscalls(s.target, opt)
	if rep == nil {
		return false, err
	}
	found := len(rep.Hooks) > 0
	if jsonOutput {
		return found, errors.Join(err, printJSON(os.Stdout, struct {
			*linux.SyscallReport
			Errors []string `json:"errors,omitempty"`
		}{rep, errorList(err)}))
	}
	if !found {
		fmt.Printf("sys_call_table at %s: %d entries, all in kernel text [%s, %s)\n",
			rep.Table, rep.Entries, rep.TextStart, rep.TextEnd)
		return false, err
	}
	fmt.Printf("sys_call_table at %s: %d of %d entries point outside kernel text [%s, %s)\n",
		rep.Table, len(rep.Hooks), rep.Entries, rep.TextStart, rep.TextEnd)
	t := newTable(os.Stdout, "NR", "TARGET", "MODULE")
	for _, h := range rep.Hooks {
		mod := h.Module
		if mod == "" {
			mod = "(none)"
		}
		t.row(h.NR, h.Target, mod)
	}
	return true, errors.Join(err, t.flush())
}

func checkText(s *session, record, baseline string) (bool, error) {
	if (record == "") == (baseline == "") {
		return false, fmt.Errorf("kernel-text: give exactly one of --record FILE and --baseline FILE")
	}
	var base *linux.TextBaseline
	if baseline != "" {
		data, err := os.ReadFile(baseline)
		if err != nil {
			return false, fmt.Errorf("kernel-text baseline: %w", err)
		}
		if base, err = linux.ParseTextBaseline(data); err != nil {
			return false, fmt.Errorf("kernel-text baseline %s: %w", baseline, err)
		}
	}
	now, hashErr := linux.HashText(s.target)
	if now == nil {
		return false, hashErr
	}
	if record != "" {
		f, err := os.Create(record)
		if err != nil {
			return false, fmt.Errorf("kernel-text record: %w", err)
		}
		err = errors.Join(printJSON(f, now), f.Close())
		if err != nil {
			return false, fmt.Errorf("kernel-text record %s: %w", record, err)
		}
		if jsonOutput {
			return false, errors.Join(hashErr, printJSON(os.Stdout, map[string]any{
				"recorded": record, "text_start": now.Start, "text_end": now.End, "pages": len(now.Pages)}))
		}
		fmt.Printf("recorded %d kernel text pages [%s, %s) to %s\n", len(now.Pages), now.Start, now.End, record)
		return false, hashErr
	}
	changes, cmpErr := linux.CompareText(base, now)
	if changes == nil {
		return false, errors.Join(cmpErr, hashErr)
	}
	hashErr = errors.Join(hashErr, cmpErr)
	found := len(changes) > 0
	if jsonOutput {
		return found, errors.Join(hashErr, printJSON(os.Stdout, map[string]any{
			"baseline": baseline, "pages": len(now.Pages), "changed": changes, "errors": errorList(hashErr)}))
	}
	if !found {
		fmt.Printf("kernel text [%s, %s): %d pages, none changed\n", now.Start, now.End, len(now.Pages))
		return false, hashErr
	}
	fmt.Printf("kernel text [%s, %s): %d of %d pages changed\n", now.Start, now.End, len(changes), len(now.Pages))
	t := newTable(os.Stdout, "PAGE", "ADDR", "STATE")
	for _, c := range changes {
		state := "modified"
		if c.Now == "" {
			state = "unreadable"
		}
		t.row(c.Page, c.Addr, state)
	}
	return true, errors.Join(hashErr, t.flush())
}

func checkHidden(_ context.Context, s *session, opt linux.Options) (bool, error) {
	rep, err := linux.HiddenTasks(s.target, opt)
	if rep == nil {
		return false, err
	}
	found := len(rep.Hidden) > 0
	if jsonOutput {
		return found, errors.Join(err, printJSON(os.Stdout, struct {
			*linux.HiddenReport
			Errors []string `json:"errors,omitempty"`
		}{rep, errorList(err)}))
	}
	if !found {
		fmt.Printf("%d tasks own a PID, all on the task list (%d listed)\n", rep.InIDR, rep.Listed)
		return false, err
	}
	fmt.Printf("%d of %d tasks that own a PID are missing from the task list\n", len(rep.Hidden), rep.InIDR)
	t := newTable(os.Stdout, "PID", "TGID", "PPID", "UID", "COMM", "TASK")
	for _, tk := range rep.Hidden {
		t.row(tk.PID, tk.TGID, tk.PPID, tk.UID, tk.Comm, tk.Addr)
	}
	return true, errors.Join(err, t.flush())
}
