package main

import (
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
"0x..." hex strings), and error when the entry looks corrupt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := src.open(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			mods, walkErr := linux.Modules(s.target, src.options())
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
		},
	}
	src.register(cmd)
	rootCmd.AddCommand(cmd)
}
