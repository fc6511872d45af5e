package main

import "github.com/spf13/cobra"

// benchCmd groups the benchmarks; each lives in its own bench_*.go file.
var benchCmd = &cobra.Command{
	Use:   "bench",
	Short: "Benchmarks of the memory fabric",
}

func init() { rootCmd.AddCommand(benchCmd) }
