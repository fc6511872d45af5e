package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/introspect/linux"
)

func init() {
	var src sourceFlags
	cmd := &cobra.Command{
		Use:   "lsmod",
		Short: "List the guest's loaded kernel modules",
		Long: `List the modules on the guest kernel's modules list.

--json prints an array of objects: name, size, base and module (addresses as
"0x..." hex strings), and error when the entry looks corrupt. Exit 1 when
part of the list could not be read (the modules found are still printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := src.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			return runLsmod(cmd.Context(), s, src.options())
		},
	}
	src.register(cmd)
	rootCmd.AddCommand(cmd)
}

// runLsmod prints the module list; the error says what could not be read.
func runLsmod(_ context.Context, s *session, opt linux.Options) error {
	mods, walkErr := linux.Modules(s.target, opt)
	if mods == nil {
		mods = []linux.Module{}
	}
	if jsonOutput {
		if err := printJSON(os.Stdout, mods); err != nil {
			return err
		}
		return walkErr
	}
	t := newTable(os.Stdout, "MODULE", "SIZE", "BASE", "STRUCT", "ERROR")
	for _, m := range mods {
		t.row(m.Name, m.Size, m.Base, m.Addr, errText(m.Err))
	}
	if err := t.flush(); err != nil {
		return err
	}
	return walkErr
}
