package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseByteSize reads a byte count: a number, optionally followed by K, M,
// G or T (binary multiples; "KiB", "KB" and "k" mean the same).
func parseByteSize(s string) (uint64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift != 0 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseUint(strings.TrimSpace(t), 10, 64)
	if err != nil || v == 0 || v > (^uint64(0))>>shift {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with K, M, G or T", s)
	}
	return v << shift, nil
}
