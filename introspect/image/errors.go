package image

import "errors"

// ErrFormat reports a memory image or dump whose bytes do not parse.
var ErrFormat = errors.New("malformed memory image")
