package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// Flags every subcommand shares.
var (
	jsonOutput bool
	logLevel   string
	cpuProfile string
	log        zerolog.Logger
	stopProf   = func() {}
)

var rootCmd = &cobra.Command{
	Use:           "vmemtrans",
	Short:         "Secure monitoring of split-memory virtual machines",
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
		lvl, err := zerolog.ParseLevel(logLevel)
		if err != nil {
			return fmt.Errorf("log level %q: %w", logLevel, err)
		}
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}).
			Level(lvl).With().Timestamp().Logger()
		if cpuProfile != "" {
			f, err := os.Create(cpuProfile)
			if err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			stopProf = func() { pprof.StopCPUProfile(); f.Close(); stopProf = func() {} }
		}
		return nil
	},
	PersistentPostRun: func(*cobra.Command, []string) { stopProf() },
}

func init() {
	rootCmd.PersistentFlags().BoolVar(&jsonOutput, "json", false, "print machine-readable JSON")
	rootCmd.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	rootCmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the command to this file (go tool pprof)")
}

// Subcommands live in their own files and register themselves with
// rootCmd.AddCommand in an init function.
func main() {
	err := rootCmd.Execute()
	stopProf()
	var found *foundError
	switch {
	case errors.As(err, &found):
		if found.err != nil {
			fmt.Fprintln(os.Stderr, "vmemtrans:", found.err)
		}
		os.Exit(exitFindings)
	case err != nil:
		fmt.Fprintln(os.Stderr, "vmemtrans:", err)
		os.Exit(1)
	}
}
