package main

import "testing"

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]uint64{"4096": 4096, "64GiB": 64 << 30, "2g": 2 << 30, "512M": 512 << 20, "1T": 1 << 40, "8KB": 8 << 10} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "G", "1X", "99999999999T"} {
		if got, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) = %d, want an error", in, got)
		}
	}
}
