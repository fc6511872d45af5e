package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time (-X main.version=...); the module version is used otherwise.
var version = ""

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version of vmemtrans",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version
			if v == "" {
				v = "devel"
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v = bi.Main.Version
				}
			}
			if jsonOutput {
				return json.NewEncoder(os.Stdout).Encode(map[string]string{"version": v, "go": runtime.Version()})
			}
			fmt.Printf("vmemtrans %s (%s)\n", v, runtime.Version())
			return nil
		},
	})
}
