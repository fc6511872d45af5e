package kernel

import "errors"

var (
	// ErrNoInitTask reports that init_task was found at no slide and
	// nowhere in physical memory.
	ErrNoInitTask = errors.New("init_task not found")
	// ErrProfile reports a profile that lacks a symbol or type New needs.
	ErrProfile = errors.New("profile lacks kernel discovery symbols")
)
