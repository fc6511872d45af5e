// Package frametest checks, from a protocol's fuzz targets, what every
// protocol framed by internal/frame must hold: a frame stream decodes into
// frames within their bounds whose headers re-encode to the bytes they
// were read from, and every payload a parser rejects is rejected with
// fabric.ErrProtocol. What a payload must re-encode to stays the
// protocol's own check.
package frametest
