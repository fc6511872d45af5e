//go:build !linux

package scan

func newScanBuffer(n int) scanBuffer { return scanBuffer{b: make([]byte, n), release: func() {}} }
