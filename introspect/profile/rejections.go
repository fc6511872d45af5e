package profile

import (
	"fmt"
	"strings"
)

// rejections records every kallsyms candidate that was looked at and why
// it was not accepted, so that a failure names them all.
type rejections struct {
	list []string
}

func (r *rejections) add(at uint64, err error) {
	r.list = append(r.list, fmt.Sprintf("token table candidate at %#x: %v", at, err))
}

func (r *rejections) addf(format string, args ...any) {
	r.list = append(r.list, fmt.Sprintf(format, args...))
}

// err reports the failure to find kallsyms in where.
func (r *rejections) err(where string) error {
	if len(r.list) == 0 {
		return fmt.Errorf("no token table signature in %s: %w", where, ErrKallsyms)
	}
	return fmt.Errorf("%d candidates in %s rejected: %s: %w", len(r.list), where, joinReasons(r.list), ErrKallsyms)
}

func joinReasons(rs []string) string {
	if len(rs) == 0 {
		return "none"
	}
	return "[" + strings.Join(rs, "; ") + "]"
}
