package image

import "errors"

// ErrFormat reports a memory image or dump whose bytes do not parse.
var ErrFormat = errors.New("malformed memory image")

// ErrTooLarge reports an image that describes, or expands to, more memory
// than the bound the caller set (Options.MaxSize).
var ErrTooLarge = errors.New("memory image too large")
