package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
)

func init() {
	var src sourceFlags
	var threads bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the guest's processes from its kernel's task list",
		Long: `List the guest's tasks by walking init_task.tasks in guest memory.

--json prints an array of objects: pid, tgid, ppid, uid, comm, task (the
task_struct address as a "0x..." hex string), mm, thread, and error when a
field of that task could not be read. Exit 1 when part of the list could not
be read (the tasks found are still printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := src.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			opt := src.options()
			opt.Threads = threads
			return runPs(cmd.Context(), s, opt)
		},
	}
	src.register(cmd)
	cmd.Flags().BoolVar(&threads, "threads", false, "list every thread, not only thread-group leaders")
	rootCmd.AddCommand(cmd)
}

// runPs prints the task list; the error says what could not be read.
func runPs(_ context.Context, s *session, opt linux.Options) error {
	tasks, walkErr := linux.Tasks(s.target, opt)
	if tasks == nil {
		tasks = []linux.Task{}
	}
	if jsonOutput {
		if err := printJSON(os.Stdout, tasks); err != nil {
			return err
		}
		return walkErr
	}
	t := newTable(os.Stdout, "PID", "TGID", "PPID", "UID", "COMM", "TASK", "ERROR")
	for _, tk := range tasks {
		t.row(tk.PID, tk.TGID, tk.PPID, tk.UID, tk.Comm, tk.Addr, errText(tk.Err))
	}
	if err := t.flush(); err != nil {
		return err
	}
	return walkErr
}
