package main

import (
	"os"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// progressBar returns a progress callback that draws a bar on stderr when
// stderr is a terminal and --json is off, and nil (no progress) otherwise,
// so scripts and logs stay quiet.
func progressBar(what string) func(done, total uint64) {
	if jsonOutput || !isatty.IsTerminal(os.Stderr.Fd()) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total uint64) {
		if bar == nil {
			bar = progressbar.NewOptions64(int64(total),
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription(what),
				progressbar.OptionShowBytes(true),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(100e6))
		}
		_ = bar.Set64(int64(done))
		if done >= total {
			_ = bar.Finish()
		}
	}
}
